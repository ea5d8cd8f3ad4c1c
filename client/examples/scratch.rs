//! temporary
use dfs_client::{Client, CreateOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("DFS_NAMENODE")?;
    let a = Client::connect(&addr).await?;
    let b = Client::connect(&addr).await?;
    let data: Vec<u8> = (0..(1024 * 1024 + 300 * 1024)).map(|i| (i * 7 % 251) as u8).collect();
    let mut w = a.create("/uc", CreateOptions { overwrite: true, ..Default::default() }).await?;
    w.write_all(&data[..1024 * 1024 + 100 * 1024]).await?;
    w.hflush().await?;
    let err = b.create("/uc", CreateOptions { overwrite: true, ..Default::default() }).await.unwrap_err();
    println!("second writer: {err}");
    let mut seen = Vec::new();
    b.open("/uc").await?.read_to_end(&mut seen).await?;
    println!("reader sees {} (want {})", seen.len(), 1024 * 1024 + 100 * 1024);
    assert_eq!(&seen[..], &data[..seen.len()]);
    // a partial chunk flush, then more
    w.write_all(&data[1024 * 1024 + 100 * 1024..1024 * 1024 + 100 * 1024 + 77]).await?;
    w.hflush().await?;
    let mut seen = Vec::new();
    b.open("/uc").await?.read_to_end(&mut seen).await?;
    println!("reader sees {} after partial flush", seen.len());
    assert_eq!(&seen[..], &data[..seen.len()]);
    w.write_all(&data[1024 * 1024 + 100 * 1024 + 77..]).await?;
    w.close().await?;
    let mut seen = Vec::new();
    b.open("/uc").await?.read_to_end(&mut seen).await?;
    assert_eq!(seen, data);
    println!("closed ok");

    // abort + recovery
    let c = Client::connect(&addr).await?;
    let mut w = c.create("/dead", CreateOptions { overwrite: true, ..Default::default() }).await?;
    w.write_all(&data[..1024 * 1024 + 5000]).await?;
    w.hflush().await?;
    w.write_all(&data[1024 * 1024 + 5000..1024 * 1024 + 6000]).await?;
    w.abort().await;
    drop(c);
    let t = std::time::Instant::now();
    loop {
        let closed = b.recover_lease("/dead", true).await;
        println!("recover: {closed:?}");
        if closed? { break; }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        if t.elapsed().as_secs() > 40 { panic!("no recovery"); }
    }
    let mut seen = Vec::new();
    b.open("/dead").await?.read_to_end(&mut seen).await?;
    println!("recovered {} bytes", seen.len());
    assert!(seen.len() >= 1024 * 1024 + 5000 && seen.len() <= 1024 * 1024 + 6000);
    assert_eq!(&seen[..], &data[..seen.len()]);
    Ok(())
}

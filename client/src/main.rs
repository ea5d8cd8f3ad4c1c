//! `dfs`: the command line of the dfs filesystem. Parsing and commands live
//! in [`dfs_client::cli`].

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// mimalloc reuses the data path's megabyte buffers; with glibc's allocator
/// each was a fresh mmap with page faults and zeroing (~10 % of the CPU of
/// a put).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = dfs_client::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            // A failure is the one line `run` prints; the library's
            // warnings on the way (retries, failovers) only on request.
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("error,dfs_client::cli=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // A closed stderr must not turn into a panic.
        .log_internal_errors(false)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dfs: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(dfs_client::cli::run(cli));
    // A read of stdin still blocked on its thread (a put of `-` that a
    // signal stopped) must not hold the exit.
    runtime.shutdown_background();
    code
}

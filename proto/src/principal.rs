//! Owner and group names: the one rule the client and the namenode check.

/// Longest owner or group name, in bytes.
pub const MAX_PRINCIPAL_LEN: usize = 256;

/// Checks an owner or group name (`what` says which): at most
/// [`MAX_PRINCIPAL_LEN`] bytes without NUL, and not empty unless
/// `empty_ok` (a create without an owner gets the default). The error
/// says what is wrong.
pub fn check_principal(what: &str, name: &str, empty_ok: bool) -> Result<(), String> {
    if name.len() > MAX_PRINCIPAL_LEN || name.contains('\0') {
        return Err(format!(
            "{what} must be at most {MAX_PRINCIPAL_LEN} bytes without NUL (got {} bytes)",
            name.len()
        ));
    }
    if name.is_empty() && !empty_ok {
        return Err(format!("empty {what}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_too_long_with_nul_or_empty_are_refused() {
        assert!(check_principal("owner", "alice", false).is_ok());
        assert!(check_principal("owner", "", true).is_ok());
        assert_eq!(
            check_principal("group", "", false).unwrap_err(),
            "empty group"
        );
        assert!(check_principal("owner", "a\0b", true).is_err());
        assert!(check_principal("owner", &"x".repeat(256), false).is_ok());
        let e = check_principal("owner", &"x".repeat(257), false).unwrap_err();
        assert!(e.contains("257 bytes"), "{e}");
    }
}

//! Secret strings: zeroized on drop, redacted in `Debug`, compared in constant time, no `PartialEq`.

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A secret value (secret access key, TOTP seed in base32, ...).
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(Zeroizing::new(s.into()))
    }

    /// The secret itself: use only where it must leave the process (a response, a file written once).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &str) -> bool {
        self.0.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_eq_works() {
        let s = Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY");
        assert!(!format!("{s:?}").contains("wJalr"));
        assert!(s.ct_eq("wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"));
        assert!(!s.ct_eq("wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEZ"));
        assert!(!s.ct_eq(""));
    }
}

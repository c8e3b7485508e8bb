//! The web console (issue 19). This first step provides its sessions ([`session`]): opaque cookies,
//! timeouts, CSRF tokens and the security headers; the pages, served under `/console/` on the main
//! listener, come next.

pub mod session;

//! The one place where internal errors become AWS error responses.

use stsd_core::token::TokenError;
use stsd_proto::ApiError;
use stsd_sigv4::SigError;
use stsd_store::StoreError;

/// SigV4 failures keep the verifier's AWS code, status and exact message.
pub fn from_sig(e: &SigError) -> ApiError {
    ApiError::new(e.status(), e.code(), e.message())
}

/// Any session token that does not open is `InvalidClientTokenId` without a final period.
pub fn from_token(e: &TokenError) -> ApiError {
    tracing::debug!(reason = %e, "session token refused");
    ApiError::invalid_session_token()
}

/// Store failures: unavailable databases answer 503, anything else 500. The cause is logged, never sent.
pub fn from_store(e: &StoreError) -> ApiError {
    if matches!(e, StoreError::LimitExceeded) {
        // Callers map their limits to AWS's exact quota message; this is the fallback (e.g. a root key
        // creation that lost a race for the last of the two slots).
        return ApiError::limit_exceeded("Cannot exceed quota for AccessKeysPerUser: 2");
    }
    if e.is_unavailable() {
        tracing::warn!(error = %e, "store unavailable");
        ApiError::service_unavailable()
    } else {
        tracing::error!(error = %e, "store failure");
        ApiError::internal()
    }
}

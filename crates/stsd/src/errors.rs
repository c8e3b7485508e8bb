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

#[cfg(test)]
mod tests {
    use super::*;

    /// A real "database or disk is full" from SQLite (`max_page_count` gives the same SQLITE_FULL as a full
    /// file system).
    async fn sqlite_full_error() -> StoreError {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .expect("open SQLite");
        sqlx::raw_sql("CREATE TABLE t (v TEXT); PRAGMA max_page_count = 8;")
            .execute(&pool)
            .await
            .expect("set up");
        for _ in 0..1000 {
            if let Err(e) = sqlx::query("INSERT INTO t (v) VALUES ($1)")
                .bind("x".repeat(1000))
                .execute(&pool)
                .await
            {
                return StoreError::from(e);
            }
        }
        panic!("the 8-page database never filled up");
    }

    fn assert_unavailable(e: &ApiError) {
        assert_eq!(
            (e.status, e.code.as_ref(), e.message.as_str()),
            (
                503,
                "ServiceUnavailable",
                "The request has failed due to a temporary failure of the server."
            )
        );
        assert_eq!(e.fault(), stsd_proto::error::Fault::Receiver);
    }

    #[tokio::test]
    async fn a_full_disk_is_service_unavailable() {
        assert_unavailable(&from_store(&sqlite_full_error().await));
    }

    #[test]
    fn unreachable_databases_are_service_unavailable() {
        assert_unavailable(&from_store(&StoreError::Db(sqlx::Error::PoolTimedOut)));
        assert_unavailable(&from_store(&StoreError::Db(sqlx::Error::Io(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        ))));
    }

    #[test]
    fn other_store_failures_are_internal() {
        let e = from_store(&StoreError::NotFound);
        assert_eq!((e.status, e.code.as_ref()), (500, "InternalFailure"));
        let e = from_store(&StoreError::Db(sqlx::Error::RowNotFound));
        assert_eq!((e.status, e.code.as_ref()), (500, "InternalFailure"));
        let e = from_store(&StoreError::LimitExceeded);
        assert_eq!((e.status, e.code.as_ref()), (409, "LimitExceeded"));
    }
}

//! Bearer-token authentication and role checks for the REST API.
//!
//! The configuration holds only SHA-256 hashes of tokens. A presented token is hashed and
//! compared with every principal's hash in constant time, so neither the comparison nor the
//! position of the matching principal leaks through timing.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchyard_api::{ApiError, ErrorCode};
use switchyard_core::config::{Principal, Role};
use switchyard_core::id::PrincipalName;

/// Who made a request, once authenticated.
#[derive(Clone, Debug)]
pub struct Caller {
    pub name: PrincipalName,
    pub roles: BTreeSet<Role>,
}

impl Caller {
    /// Fails with 403 unless the caller holds one of `roles` (or `admin`, which holds them all).
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if self.roles.contains(&Role::Admin) || roles.iter().any(|role| self.roles.contains(role)) {
            return Ok(());
        }
        let wanted: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
        Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "principal `{}` lacks the role this needs (one of: {})",
                self.name,
                wanted.join(", ")
            ),
        ))
    }
}

/// The principals of the configuration, with their hashes decoded once.
#[derive(Debug)]
pub struct Authenticator {
    principals: Vec<(Vec<u8>, Caller)>,
}

impl Authenticator {
    pub fn new(principals: &[Principal]) -> Self {
        let principals = principals
            .iter()
            .filter_map(|principal| {
                // `spec` validated every hash as 64 hex digits; one that is not simply never matches.
                let hash = decode_hex(&principal.token_sha256)?;
                Some((
                    hash,
                    Caller {
                        name: principal.name.clone(),
                        roles: principal.roles.clone(),
                    },
                ))
            })
            .collect();
        Self { principals }
    }

    /// The caller for an `Authorization` header value, or 401.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        let Some(token) = authorization.and_then(|value| value.strip_prefix("Bearer ")) else {
            return Err(ApiError::new(
                ErrorCode::Unauthenticated,
                "missing bearer token: send `Authorization: Bearer <token>`",
            ));
        };
        let presented = Sha256::digest(token.trim().as_bytes());
        let mut found = None;
        for (hash, caller) in &self.principals {
            if bool::from(hash.as_slice().ct_eq(presented.as_slice())) {
                found = Some(caller);
            }
        }
        found
            .cloned()
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "unknown bearer token"))
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(name: &str, token: &str, roles: &[Role]) -> Principal {
        let hash = Sha256::digest(token.as_bytes());
        Principal {
            name: PrincipalName::new(name),
            token_sha256: hash.iter().map(|byte| format!("{byte:02x}")).collect(),
            roles: roles.iter().copied().collect(),
        }
    }

    #[test]
    fn tokens_map_to_principals_and_roles_are_checked() {
        let authenticator = Authenticator::new(&[
            principal("viewer", "v-token", &[Role::Viewer]),
            principal("root", "a-token", &[Role::Admin]),
        ]);
        let viewer = authenticator
            .authenticate(Some("Bearer v-token"))
            .expect("viewer");
        assert_eq!(viewer.name.as_str(), "viewer");
        assert!(viewer.require(&[Role::Viewer]).is_ok());
        let refused = viewer
            .require(&[Role::Operator])
            .expect_err("viewer is no operator");
        assert_eq!(refused.code, ErrorCode::Forbidden);
        let admin = authenticator
            .authenticate(Some("Bearer a-token"))
            .expect("admin");
        assert!(admin.require(&[Role::Operator]).is_ok());
        for header in [
            None,
            Some("Bearer wrong"),
            Some("v-token"),
            Some("Basic v-token"),
        ] {
            let error = authenticator.authenticate(header).expect_err("no access");
            assert_eq!(error.code, ErrorCode::Unauthenticated, "{header:?}");
        }
    }
}

//! The userinfo response: Logto's claims kept as they come, and the subject check that ties it
//! to the signed-in user (OIDC Core §5.3.2).

use serde_json::{Map, Value};

use crate::error::ValidationError;

/// Checks that the userinfo `sub` is the ID token's `sub`.
///
/// # Errors
/// [`ValidationError::Subject`] when they differ or either is missing.
pub fn check_subject(
    user_info: &Map<String, Value>,
    id_token_claims: &Map<String, Value>,
) -> Result<(), ValidationError> {
    match (
        user_info.get("sub").and_then(Value::as_str),
        id_token_claims.get("sub").and_then(Value::as_str),
    ) {
        (Some(a), Some(b)) if a == b => Ok(()),
        _ => Err(ValidationError::Subject),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn subjects_must_match() {
        let id = json!({"sub": "u1"});
        let id = id.as_object().unwrap();
        assert!(check_subject(json!({"sub": "u1", "custom_data": {}}).as_object().unwrap(), id).is_ok());
        assert_eq!(
            check_subject(json!({"sub": "u2"}).as_object().unwrap(), id),
            Err(ValidationError::Subject)
        );
        assert_eq!(
            check_subject(json!({}).as_object().unwrap(), id),
            Err(ValidationError::Subject)
        );
    }
}

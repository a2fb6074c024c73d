use serde::{Deserialize, Serialize};

/// The body of every Docker API error: `{"message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// What went wrong, for a person.
    pub message: String,
}

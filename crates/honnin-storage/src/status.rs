//! The status values of stored records, each spelled once: the same spelling is the
//! column value in both databases and the value on the wire (`/v1` JSON, webhook
//! events), so [`LivenessStatus::as_str`] and its kin are the one mapping. Parsing an
//! unknown spelling read from a column is [`StoreError::Corrupt`](crate::StoreError).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Declares a status enum: its variants with their spellings (serde, column, wire),
/// `ALL`, `as_str`, `Display` and `FromStr`.
macro_rules! status_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $spelling:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $spelling)] $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant ),+ ];

            /// The spelling: column value and wire value alike.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $spelling ),+
                }
            }
        }

        // By hand: utoipa's derive does not see the `rename` of a variant made by this
        // macro, and would list the Rust names.
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
                utoipa::openapi::RefOr::T(Schema::Object(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([$($spelling),+]))
                        .build(),
                ))
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownStatus;

            fn from_str(s: &str) -> Result<Self, UnknownStatus> {
                match s {
                    $( $spelling => Ok($name::$variant), )+
                    _ => Err(UnknownStatus {
                        kind: stringify!($name),
                        value: s.chars().take(64).collect(),
                    }),
                }
            }
        }
    };
}

/// A spelling that names no value of a status enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}`")]
pub struct UnknownStatus {
    /// The enum's name.
    pub kind: &'static str,
    /// The spelling met (at most 64 characters).
    pub value: String,
}

status_enum!(
    /// Where a Face Liveness session stands (Rekognition's `LivenessSessionStatus`).
    LivenessStatus {
        /// Created; its stream has not been opened.
        Created = "CREATED",
        /// Its one stream is running.
        InProgress = "IN_PROGRESS",
        /// The stream ran to its end; the results say live or not.
        Succeeded = "SUCCEEDED",
        /// The stream failed (protocol error, client gone, key revoked).
        Failed = "FAILED",
        /// It was not finished in time.
        Expired = "EXPIRED",
    }
);

impl LivenessStatus {
    /// Whether the session has ended (no stream may run any more).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            LivenessStatus::Succeeded | LivenessStatus::Failed | LivenessStatus::Expired
        )
    }
}

status_enum!(
    /// Where an identity verification stands: waiting for a step, being decided by one
    /// server, or decided (its final status is the decision's outcome).
    VerificationState {
        /// Waiting for the ID document.
        AwaitingDocument = "awaiting_document",
        /// Waiting for its liveness session to end.
        AwaitingLiveness = "awaiting_liveness",
        /// One server is deciding it.
        Processing = "processing",
        /// Decided: approved.
        Approved = "approved",
        /// Decided: rejected.
        Rejected = "rejected",
        /// Decided: a person should look at it.
        NeedsReview = "needs_review",
        /// Not finished in time.
        Expired = "expired",
        /// Its key was revoked before it was decided.
        Cancelled = "cancelled",
    }
);

impl VerificationState {
    /// Whether it still waits for a step from the client (document or liveness).
    pub fn is_awaiting(self) -> bool {
        matches!(
            self,
            VerificationState::AwaitingDocument | VerificationState::AwaitingLiveness
        )
    }
}

status_enum!(
    /// The outcome of a verification's decision (its final [`VerificationState`]).
    Outcome {
        /// Every step passed.
        Approved = "approved",
        /// A step failed.
        Rejected = "rejected",
        /// No step failed, but one asks for a person's look.
        NeedsReview = "needs_review",
        /// Not finished in time.
        Expired = "expired",
        /// Its key was revoked before it was decided.
        Cancelled = "cancelled",
    }
);

impl From<Outcome> for VerificationState {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Approved => VerificationState::Approved,
            Outcome::Rejected => VerificationState::Rejected,
            Outcome::NeedsReview => VerificationState::NeedsReview,
            Outcome::Expired => VerificationState::Expired,
            Outcome::Cancelled => VerificationState::Cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_parses_back_and_serialises_as_itself() {
        fn check<T>(all: &[T])
        where
            T: Copy + PartialEq + fmt::Debug + fmt::Display + FromStr + Serialize,
            <T as FromStr>::Err: fmt::Debug,
        {
            for v in all {
                let s = v.to_string();
                assert_eq!(s.parse::<T>().unwrap(), *v);
                assert_eq!(
                    serde_json::to_value(v).unwrap(),
                    serde_json::Value::String(s)
                );
            }
        }
        check(LivenessStatus::ALL);
        check(VerificationState::ALL);
        check(Outcome::ALL);
        let e = "ACTIVE".parse::<LivenessStatus>().unwrap_err();
        assert_eq!(e.to_string(), "unknown LivenessStatus `ACTIVE`");
    }

    #[test]
    fn every_outcome_is_a_final_state_of_the_same_spelling() {
        for o in Outcome::ALL {
            let s = VerificationState::from(*o);
            assert_eq!(s.as_str(), o.as_str());
            assert!(!s.is_awaiting() && s != VerificationState::Processing);
        }
    }
}

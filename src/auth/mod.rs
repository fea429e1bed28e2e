//! Identity: password hashes, access tokens (JWT), opaque refresh tokens, and the
//! authenticator that turns a bearer token into a [`Caller`].

pub mod authenticator;
pub mod password;
pub mod permissions;
pub mod rate_limit;
pub mod second_factor;
pub mod throttle;
pub mod tokens;

pub use authenticator::{AuthError, Authenticator, Caller};
pub use tokens::{AccessClaims, TokenError, TokenService};

/// The cookie holding a web page's access token (`web::session`); `/ws` also accepts it from a
/// page of the hub's own origin (`http/ws.rs`).
pub const WEB_ACCESS_COOKIE: &str = "nashub_access";

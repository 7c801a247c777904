//! Verifying user tokens (JWT) for Locked keys and per-user records: an HS256 shared secret, or
//! a JWKS (from a file or a URL) with RS256/ES256. `exp` is always required; `iss` and `aud`
//! are checked when configured. The algorithm comes from the configured key, never from the
//! token: `none`, and an HS256 token "signed" with a public key, are refused.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use skapi_core::{ApiError, ErrorCode};
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// How a server verifies tokens (from the command line).
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub hs256_secret: Option<Vec<u8>>,
    pub jwks_file: Option<PathBuf>,
    pub jwks_url: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub sub: String,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

enum Keys {
    Off,
    Hs256(DecodingKey),
    Jwks { set: RwLock<JwkSet>, url: Option<String>, fetched: Mutex<Instant> },
}

pub struct Verifier {
    keys: Keys,
    issuer: Option<String>,
    audience: Option<String>,
}

/// A JWKS may be fetched again (for an unknown `kid`) at most this often.
const JWKS_REFRESH: Duration = Duration::from_secs(60);

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, message)
}

async fn fetch_jwks(url: &str) -> anyhow::Result<JwkSet> {
    let text = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?.get(url).send().await?.error_for_status()?.text().await?;
    Ok(serde_json::from_str(&text)?)
}

/// The one algorithm a JWK may verify.
fn algorithm_of(jwk: &Jwk) -> Option<Algorithm> {
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => Some(Algorithm::ES256),
        _ => None,
    }
}

impl Verifier {
    pub async fn load(config: &AuthConfig) -> anyhow::Result<Verifier> {
        let keys = if let Some(secret) = &config.hs256_secret {
            anyhow::ensure!(secret.len() >= 32, "the HS256 secret must be at least 32 bytes");
            Keys::Hs256(DecodingKey::from_secret(secret))
        } else if let Some(path) = &config.jwks_file {
            let set: JwkSet = serde_json::from_slice(&std::fs::read(path)?)?;
            Keys::Jwks { set: RwLock::new(set), url: None, fetched: Mutex::new(Instant::now()) }
        } else if let Some(url) = &config.jwks_url {
            let set = fetch_jwks(url).await.map_err(|e| anyhow::anyhow!("fetching the JWKS from {url}: {e}"))?;
            Keys::Jwks { set: RwLock::new(set), url: Some(url.clone()), fetched: Mutex::new(Instant::now()) }
        } else {
            Keys::Off
        };
        Ok(Verifier { keys, issuer: config.issuer.clone(), audience: config.audience.clone() })
    }

    pub fn enabled(&self) -> bool {
        !matches!(self.keys, Keys::Off)
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut v = Validation::new(algorithm);
        v.leeway = 5;
        v.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
            required.push("iss");
        }
        match &self.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                required.push("aud");
            }
            None => v.validate_aud = false,
        }
        v.set_required_spec_claims(&required);
        v
    }

    fn find(set: &JwkSet, kid: Option<&str>) -> Option<Jwk> {
        match kid {
            Some(kid) => set.find(kid).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        }
    }

    /// The user a token proves, or `UNAUTHORIZED`.
    pub async fn verify(&self, token: &str) -> Result<User, ApiError> {
        let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
        let header = decode_header(token).map_err(|_| unauthorized("The user token is not a valid JWT."))?;
        // `crit` names extensions a verifier must understand, and this one understands none
        // (RFC 7515 §4.1.11).
        if header.crit.is_some() {
            return Err(unauthorized("The user token names critical extensions (\"crit\"), which this server does not support."));
        }
        let (key, algorithm) = match &self.keys {
            Keys::Off => return Err(unauthorized("This server does not accept user tokens.")),
            Keys::Hs256(key) => (key.clone(), Algorithm::HS256),
            Keys::Jwks { set, url, fetched } => {
                let kid = header.kid.as_deref();
                let mut jwk = Self::find(&set.read().unwrap_or_else(|e| e.into_inner()), kid);
                if jwk.is_none() {
                    if let Some(url) = url {
                        let due = fetched.lock().map(|t| t.elapsed() >= JWKS_REFRESH).unwrap_or(false);
                        if due {
                            if let Ok(fresh) = fetch_jwks(url).await {
                                jwk = Self::find(&fresh, kid);
                                *set.write().unwrap_or_else(|e| e.into_inner()) = fresh;
                            }
                            if let Ok(mut t) = fetched.lock() {
                                *t = Instant::now();
                            }
                        }
                    }
                }
                let jwk = jwk.ok_or_else(|| unauthorized("The user token was signed by an unknown key."))?;
                let algorithm = algorithm_of(&jwk).ok_or_else(|| unauthorized("The user token's key is of an unsupported type."))?;
                let key = DecodingKey::from_jwk(&jwk).map_err(|_| unauthorized("The user token's key is not usable."))?;
                (key, algorithm)
            }
        };
        if header.alg != algorithm {
            return Err(unauthorized("The user token uses an algorithm this server does not accept."));
        }
        let data = decode::<Claims>(token, &key, &self.validation(algorithm)).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => unauthorized("The user token has expired."),
                ErrorKind::ImmatureSignature => unauthorized("The user token is not valid yet (nbf)."),
                ErrorKind::InvalidAudience => unauthorized("The user token is not for this audience."),
                ErrorKind::InvalidIssuer => unauthorized("The user token is not from the expected issuer."),
                _ => unauthorized("The user token is not valid."),
            }
        })?;
        if data.claims.sub.is_empty() {
            return Err(unauthorized("The user token names no user."));
        }
        Ok(User { sub: data.claims.sub })
    }
}

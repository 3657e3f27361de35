//! Demo data for `cargo roost up`: a host, a guest and the host's listings, made through the
//! public API exactly as a client would, so the demo exercises the real code paths (and proves
//! them at every start).

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

pub struct DemoUser {
    pub role: &'static str,
    pub email: &'static str,
    pub password: &'static str,
}

const PASSWORD: &str = "Roost-demo-1";

pub struct Demo {
    pub users: Vec<DemoUser>,
    pub listings: usize,
}

pub async fn seed(api_url: &str) -> Result<Demo> {
    let (host, host_token) = user(api_url, "host", "host@demo.roost.dev", "Helena Host", true).await?;
    let (guest, _) = user(api_url, "guest", "guest@demo.roost.dev", "Gustavo Guest", false).await?;
    let listings = crate::seed_listings::seed_listings(api_url, &host_token).await?;
    Ok(Demo { users: vec![host, guest], listings })
}

/// The user and an access token (carrying `hosts` for a host).
async fn user(
    api_url: &str,
    role: &'static str,
    email: &'static str,
    name: &str,
    host: bool,
) -> Result<(DemoUser, String)> {
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| http.post(format!("{api_url}{path}")).json(&body).send();
    let signup = post("/v1/auth/signup", json!({"email": email, "password": PASSWORD, "name": name})).await?;
    if !signup.status().is_success() {
        bail!("demo {role}: sign-up answered {}: {}", signup.status(), signup.text().await.unwrap_or_default());
    }
    // moto accepts any confirmation code (EMULATORS.md).
    post("/v1/auth/confirm", json!({"email": email, "code": "000000"})).await?.error_for_status()?;
    let tokens = login(&http, api_url, email).await?;
    let mut access_token = tokens["access_token"].as_str().context("access token")?.to_string();
    if host {
        http.post(format!("{api_url}/v1/me/host")).bearer_auth(&access_token).send().await?.error_for_status()?;
        // The `hosts` group is in tokens issued after joining it.
        access_token = login(&http, api_url, email).await?["access_token"].as_str().context("access token")?.into();
    }
    Ok((DemoUser { role, email, password: PASSWORD }, access_token))
}

async fn login(http: &reqwest::Client, api_url: &str, email: &str) -> Result<Value> {
    let response = http
        .post(format!("{api_url}/v1/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await?
        .error_for_status()
        .with_context(|| format!("demo login {email}"))?;
    Ok(response.json().await?)
}

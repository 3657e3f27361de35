//! Tokens for testing the authorizer: moto's Cognito signing key (shipped inside the moto
//! package, kid `dummy`, the same for every pool) and a stranger's key, to forge expired tokens,
//! tokens for another client and tokens signed by someone else.

use std::path::PathBuf;
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Moto's Cognito signing key (shipped with moto, kid `dummy`) and a fresh RSA key of our own, as PEM.
pub fn signing_keys() -> (EncodingKey, EncodingKey) {
    const SCRIPT: &str = r#"
import base64, gzip, json, os, moto
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
def number(s):
    return int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big")
path = os.path.join(os.path.dirname(moto.__file__), "cognitoidp/resources/jwks-private.json.gz")
jwk = json.load(gzip.open(path))
n, e, d = number(jwk["n"]), number(jwk["e"]), number(jwk["d"])
p, q = rsa.rsa_recover_prime_factors(n, e, d)
moto_key = rsa.RSAPrivateNumbers(p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q),
                                 rsa.RSAPublicNumbers(e, n)).private_key()
other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
pem = lambda k: k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
print(json.dumps({"kid": jwk["kid"], "moto": pem(moto_key), "other": pem(other_key)}))
"#;
    let python = root().join(".venv/bin/python");
    let output =
        Command::new(&python).args(["-c", SCRIPT]).output().unwrap_or_else(|e| panic!("{}: {e}", python.display()));
    assert!(output.status.success(), "reading moto's key: {}", String::from_utf8_lossy(&output.stderr));
    let keys: Value = serde_json::from_slice(&output.stdout).expect("keys JSON");
    assert_eq!(keys["kid"], "dummy");
    let key = |name: &str| EncodingKey::from_rsa_pem(keys[name].as_str().expect("pem").as_bytes()).expect("RSA PEM");
    (key("moto"), key("other"))
}

pub fn claims_of(token: &str) -> Map<String, Value> {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("claims JSON")
}

pub fn sign(claims: &Map<String, Value>, key: &EncodingKey) -> String {
    let header = Header { kid: Some("dummy".into()), ..Header::new(Algorithm::RS256) };
    jsonwebtoken::encode(&header, claims, key).expect("signing")
}

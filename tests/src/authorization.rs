//! The authorization matrix (`tests/authorization.yaml`): every route against every caller, with
//! the answer each must get. Read here for the end-to-end test that runs it
//! (tests/tests/e2e/authorization.rs) and rendered to `docs/authorization.md` (`render`, written
//! by `cargo roost authorization`; a test fails while the committed page differs).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

/// Why the matrix file cannot be used: each names the route and caller concerned.
#[derive(Debug)]
pub enum MatrixError {
    Read(std::io::Error),
    Yaml(serde_yaml::Error),
    Invalid(String),
}

impl std::fmt::Display for MatrixError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Read(e) => write!(f, "reading tests/authorization.yaml: {e}"),
            Self::Yaml(e) => write!(f, "tests/authorization.yaml: {e}"),
            Self::Invalid(why) => write!(f, "tests/authorization.yaml: {why}"),
        }
    }
}

impl std::error::Error for MatrixError {}

/// The callers, in the order of the file's `callers` list (and of the page's columns).
pub const CALLERS: [&str; 8] =
    ["anonymous", "stranger", "guest", "host", "other_host", "signed_out", "expired", "forged"];

/// The groups of private values a body may carry (`+group` in a cell).
/// `stranger` and `other_host` are people too: they book the host's listing in phase 1, so the
/// host's reservations name them as his guests. `booking_id` lets the booking ids alone through
/// (a public review names the booking it reviews; the id opens nothing but to its guest and host).
pub const GROUPS: [&str; 7] = ["self", "guest", "host", "stranger", "other_host", "booking", "booking_id"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    pub callers: Vec<String>,
    pub routes: Vec<RouteCells>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteCells {
    /// `METHOD /path` exactly as the template declares it.
    pub route: String,
    /// The concrete path with placeholders; the route's own path when absent.
    pub path: Option<String>,
    pub body: Option<Value>,
    /// 1 (default): every cell at once; 2 and 3: one by one afterwards, in that order (the cells
    /// change the fixture for good).
    #[serde(default = "first_phase")]
    pub phase: u8,
    pub cells: BTreeMap<String, String>,
}

fn first_phase() -> u8 {
    1
}

impl RouteCells {
    pub fn method(&self) -> &str {
        self.route.split(' ').next().unwrap_or_default()
    }

    pub fn template_path(&self) -> &str {
        self.route.split(' ').nth(1).unwrap_or_default()
    }

    /// The path to request, placeholders unfilled.
    pub fn path(&self) -> &str {
        self.path.as_deref().unwrap_or_else(|| self.template_path())
    }

    /// The expected answer for `caller` (the file was checked by [`load`]: every caller has one).
    pub fn expect(&self, caller: &str) -> Result<Expect, MatrixError> {
        let cell = self
            .cells
            .get(caller)
            .ok_or_else(|| MatrixError::Invalid(format!("{}: no cell for {caller}", self.route)))?;
        Expect::parse(cell).map_err(|why| MatrixError::Invalid(format!("{} / {caller}: {why}", self.route)))
    }
}

/// One cell: the status, the problem code (or the gateway's own answer), and whose private values
/// the body may carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    pub status: u16,
    pub answer: Answer,
    pub carries: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Whatever the function answers with this status (a success, usually).
    Any,
    /// API Gateway's own `{"message": ...}`: the function never ran.
    Gateway,
    /// A problem+json with this `code`.
    Problem(String),
}

impl Expect {
    pub fn parse(cell: &str) -> Result<Expect, String> {
        let mut words = cell.split_whitespace();
        let status: u16 = words
            .next()
            .and_then(|s| s.parse().ok())
            .filter(|s| (100..600).contains(s))
            .ok_or_else(|| format!("{cell:?} does not start with a status"))?;
        let mut answer = Answer::Any;
        let mut carries = Vec::new();
        for word in words {
            if let Some(group) = word.strip_prefix('+') {
                if !GROUPS.contains(&group) {
                    return Err(format!("{cell:?}: +{group} is not one of {GROUPS:?}"));
                }
                carries.push(group.to_owned());
            } else if answer != Answer::Any || !carries.is_empty() {
                return Err(format!("{cell:?}: one code, before the groups"));
            } else if word == "gateway" {
                answer = Answer::Gateway;
            } else if word.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                answer = Answer::Problem(word.to_owned());
            } else {
                return Err(format!("{cell:?}: {word:?} is neither a code nor +group"));
            }
        }
        if (200..300).contains(&status) && answer != Answer::Any {
            return Err(format!("{cell:?}: a success carries no problem code"));
        }
        if !(200..300).contains(&status) && !carries.is_empty() {
            return Err(format!("{cell:?}: a refusal may carry nobody's data"));
        }
        Ok(Expect { status, answer, carries })
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn may_carry(&self, group: &str) -> bool {
        self.carries.iter().any(|g| g == group)
    }
}

pub fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("authorization.yaml")
}

/// `docs/authorization.md`, the page rendered from the matrix.
pub fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/authorization.md")
}

/// The matrix, checked: the callers are [`CALLERS`] in order, every route names each of them
/// once, every cell parses, no route appears twice.
pub fn load() -> Result<Matrix, MatrixError> {
    let text = std::fs::read_to_string(path()).map_err(MatrixError::Read)?;
    let matrix: Matrix = serde_yaml::from_str(&text).map_err(MatrixError::Yaml)?;
    if matrix.callers != CALLERS {
        return Err(MatrixError::Invalid(format!("callers must be {CALLERS:?}")));
    }
    let mut seen = std::collections::BTreeSet::new();
    for route in &matrix.routes {
        if !seen.insert(route.route.clone()) {
            return Err(MatrixError::Invalid(format!("{} is listed twice", route.route)));
        }
        if !(1..=3).contains(&route.phase) {
            return Err(MatrixError::Invalid(format!("{}: phase is 1, 2 or 3", route.route)));
        }
        let named: Vec<&str> = route.cells.keys().map(String::as_str).collect();
        let mut want: Vec<&str> = CALLERS.to_vec();
        want.sort_unstable();
        if named != want {
            return Err(MatrixError::Invalid(format!("{}: cells for {named:?}, want every caller", route.route)));
        }
        for caller in CALLERS {
            route.expect(caller)?;
        }
    }
    Ok(matrix)
}

/// `docs/authorization.md`, from the matrix.
pub fn render(matrix: &Matrix) -> Result<String, MatrixError> {
    let mut out = String::new();
    out.push_str(
        "# Authorization matrix\n\n\
         <!-- Generated from tests/authorization.yaml by `cargo roost authorization`; do not edit. -->\n\n\
         Every route of `infra/template.yaml` against every kind of caller, and the answer each \
         gets. `tests/tests/e2e/authorization.rs` runs every cell against the local stack (in \
         `cargo roost test`) and fails on any other status, on any private value of another \
         person in any answer, and wherever a real id of someone else is answered differently \
         from a random id (so ids cannot be enumerated).\n\n\
         Callers, on one listing of `host` booked by `guest` (paid, stayed, reviewed):\n\n\
         | caller | who |\n|---|---|\n\
         | anonymous | no `Authorization` header |\n\
         | stranger | signed in, no relation to the listing or the booking |\n\
         | guest | the booking's guest |\n\
         | host | the listing's host |\n\
         | other_host | a host of another listing |\n\
         | signed_out | the guest's access token after the guest signed out |\n\
         | expired | the host's claims with `exp` an hour past, signed with the pool's key |\n\
         | forged | the guest's claims signed by another key, and with `alg: none` |\n\n\
         A cell is the status, then the problem `code` (`gateway`: API Gateway's own 401, before \
         any function runs), then whose private values the body may carry: `self` (the caller's \
         own), `guest`, `host` (ids and names; an e-mail never reaches anyone but its owner), \
         `stranger`, `other_host` (who book the listing in phase 1, so they are the host's \
         guests too), `booking` (the booking's ids and amount), `booking_id` (its ids alone: a \
         public review names the booking it reviews). Anything else in a body fails the test. Routes \
         of phase 2 and 3 change the fixture for good and run one cell at a time, last.\n\n",
    );
    out.push_str("| route |");
    for caller in CALLERS {
        let _ = write!(out, " {caller} |");
    }
    out.push_str("\n|---|");
    for _ in CALLERS {
        out.push_str("---|");
    }
    out.push('\n');
    for route in &matrix.routes {
        let _ = write!(out, "| `{}` |", route.route);
        for caller in CALLERS {
            let e = route.expect(caller)?;
            let mut cell = e.status.to_string();
            match &e.answer {
                Answer::Any => {}
                Answer::Gateway => cell.push_str(" gateway"),
                Answer::Problem(code) => {
                    let _ = write!(cell, " `{code}`");
                }
            }
            if !e.carries.is_empty() {
                let _ = write!(cell, " ({})", e.carries.join(", "));
            }
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_parse_into_status_code_and_groups() {
        let e = Expect::parse("200 +self +booking").expect("parses");
        assert_eq!((e.status, e.answer.clone()), (200, Answer::Any));
        assert!(e.may_carry("booking") && e.may_carry("self") && !e.may_carry("guest"));
        assert_eq!(Expect::parse("401 gateway").expect("parses").answer, Answer::Gateway);
        assert_eq!(Expect::parse("404 not_found").expect("parses").answer, Answer::Problem("not_found".into()));
        for bad in ["", "ok", "200 not_found", "404 +guest", "200 +everyone", "404 Not-Found", "404 a b"] {
            assert!(Expect::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn the_file_parses_and_every_route_has_every_caller() {
        let matrix = load().unwrap_or_else(|e| panic!("{e}"));
        assert!(matrix.routes.len() >= 40, "{}", matrix.routes.len());
    }
}

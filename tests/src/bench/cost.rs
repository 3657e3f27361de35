//! Dollars per million completed bookings on AWS at list prices, from what the load run
//! measured: every figure is a count or a duration the run recorded, divided by the bookings it
//! completed, times the price. The prices are us-east-1 list prices (December 2026, no free
//! tier, no savings plans); the formula is printed with the result (docs/performance.md).

use std::collections::BTreeMap;

use serde::Serialize;

/// us-east-1 list prices, USD.
pub mod price {
    /// Lambda on arm64 (the template's `Architectures`), per GB-second.
    pub const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
    /// Lambda, per request.
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    /// API Gateway HTTP API, per request (first 300 million a month).
    pub const HTTP_API_REQUEST: f64 = 1.00 / 1e6;
    /// DynamoDB on-demand, per read request unit.
    pub const DDB_READ_UNIT: f64 = 0.125 / 1e6;
    /// DynamoDB on-demand, per write request unit.
    pub const DDB_WRITE_UNIT: f64 = 0.625 / 1e6;
    /// SQS standard queue, per request (64 KB chunk).
    pub const SQS_REQUEST: f64 = 0.40 / 1e6;
    /// SNS standard topic, per publish (deliveries to SQS are free).
    pub const SNS_PUBLISH: f64 = 0.50 / 1e6;
    /// SES, per e-mail sent.
    pub const SES_EMAIL: f64 = 0.10 / 1e3;
    /// CloudWatch Logs ingestion, per GB (the functions' JSON lines and REPORT lines).
    pub const LOG_GB: f64 = 0.50;
}

/// What one function did during the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FunctionUsage {
    pub invocations: u64,
    /// The sum of the REPORT lines' `Billed Duration`.
    pub billed_ms: u64,
    pub memory_mb: u64,
}

/// Everything the run measured that AWS bills.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    pub bookings: u64,
    pub functions: BTreeMap<String, FunctionUsage>,
    pub api_requests: u64,
    pub ddb_read_units: f64,
    pub ddb_write_units: f64,
    pub sqs_requests: u64,
    pub sns_publishes: u64,
    pub ses_emails: u64,
    pub log_bytes: u64,
}

/// The cost of a million bookings, per service, and the formula that made it.
#[derive(Debug, Clone, Serialize)]
pub struct Cost {
    pub per_million_bookings_usd: f64,
    pub by_service: BTreeMap<String, f64>,
    pub formula: Vec<String>,
}

/// `usage` scaled to a million bookings and priced; `None` when the run completed no booking.
pub fn per_million_bookings(usage: &Usage) -> Option<Cost> {
    if usage.bookings == 0 {
        return None;
    }
    let scale = 1e6 / usage.bookings as f64;
    let gb_seconds: f64 =
        usage.functions.values().map(|f| f.billed_ms as f64 / 1000.0 * f.memory_mb as f64 / 1024.0).sum();
    let invocations: u64 = usage.functions.values().map(|f| f.invocations).sum();
    let by_service = BTreeMap::from([
        ("lambda_compute".to_owned(), gb_seconds * price::LAMBDA_GB_SECOND * scale),
        ("lambda_requests".to_owned(), invocations as f64 * price::LAMBDA_REQUEST * scale),
        ("api_gateway".to_owned(), usage.api_requests as f64 * price::HTTP_API_REQUEST * scale),
        ("dynamodb_reads".to_owned(), usage.ddb_read_units * price::DDB_READ_UNIT * scale),
        ("dynamodb_writes".to_owned(), usage.ddb_write_units * price::DDB_WRITE_UNIT * scale),
        ("sqs".to_owned(), usage.sqs_requests as f64 * price::SQS_REQUEST * scale),
        ("sns".to_owned(), usage.sns_publishes as f64 * price::SNS_PUBLISH * scale),
        ("ses".to_owned(), usage.ses_emails as f64 * price::SES_EMAIL * scale),
        ("cloudwatch_logs".to_owned(), usage.log_bytes as f64 / 1e9 * price::LOG_GB * scale),
    ]);
    let per_million_bookings_usd = by_service.values().sum();
    let n = usage.bookings;
    let formula = vec![
        format!("scale = 1,000,000 / {n} bookings completed in the run"),
        format!(
            "Lambda: {gb_seconds:.3} GB-s (sum of billed ms / 1000 x memory MB / 1024 per function) x ${} + {invocations} invocations x $0.20/M",
            price::LAMBDA_GB_SECOND
        ),
        format!("API Gateway: {} HTTP API requests x $1.00/M", usage.api_requests),
        format!(
            "DynamoDB on-demand: {:.1} read units x $0.125/M + {:.1} write units x $0.625/M",
            usage.ddb_read_units, usage.ddb_write_units
        ),
        format!(
            "SQS {} requests x $0.40/M; SNS {} publishes x $0.50/M; SES {} e-mails x $0.10/1000",
            usage.sqs_requests, usage.sns_publishes, usage.ses_emails
        ),
        format!("CloudWatch Logs: {} bytes ingested x $0.50/GB", usage.log_bytes),
        "each term x scale; the sum is the cost of a million bookings".to_owned(),
    ];
    Some(Cost { per_million_bookings_usd, by_service, formula })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_million_bookings_costs_the_usage_scaled_and_priced() {
        let usage = Usage {
            bookings: 10,
            functions: BTreeMap::from([(
                "F".to_owned(),
                FunctionUsage { invocations: 40, billed_ms: 4_000, memory_mb: 256 },
            )]),
            api_requests: 50,
            ddb_read_units: 30.0,
            ddb_write_units: 20.0,
            sqs_requests: 30,
            sns_publishes: 10,
            ses_emails: 20,
            log_bytes: 1_000_000,
        };
        let cost = per_million_bookings(&usage).expect("bookings were made");
        let scale = 100_000.0;
        // 4 s at 0.25 GB = 1 GB-s.
        assert!((cost.by_service["lambda_compute"] - price::LAMBDA_GB_SECOND * scale).abs() < 1e-9);
        assert!((cost.by_service["api_gateway"] - 5.0).abs() < 1e-9, "50 requests x $1/M x 100,000");
        assert!((cost.by_service["ses"] - 200.0).abs() < 1e-9, "20 e-mails x $0.0001 x 100,000");
        let sum: f64 = cost.by_service.values().sum();
        assert!((cost.per_million_bookings_usd - sum).abs() < 1e-9);
        assert!(cost.formula.iter().any(|l| l.contains("10 bookings")));
    }

    #[test]
    fn no_booking_no_cost() {
        assert!(per_million_bookings(&Usage::default()).is_none());
    }
}

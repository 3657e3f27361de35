//! Listings written straight to the table by the listings store's own transaction, for tests and
//! the bench that read big cities (making hundreds of listings over HTTP would be most of their
//! time).

use std::sync::Arc;

use shared::listing::{self, ListingItem};

use crate::User;

/// **Seeded listings**: `n` listings in `city`, as `create_in(host, city, "PT", 2 + i % 3,
/// 10_000 + i, "EUR")` would make them, written straight to the table by the listings store's
/// own transaction (`listings::store::create`: the listing item and its search item, exactly what
/// `POST /v1/listings` writes). The test using them is about reading a big city; making its 310
/// listings over HTTP was the suite's largest cost.
pub async fn seed_listings(host: &User, city: &str, n: usize) {
    let table = crate::table();
    let gate = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (table, gate) = (table.clone(), gate.clone());
        let item = seeded_listing(host, city, i);
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.expect("semaphore");
            listings::store::create(&table, &item).await.expect("seed a listing")
        });
    }
    let mut made = 0;
    while let Some(done) = tasks.join_next().await {
        done.expect("seed task");
        made += 1;
    }
    assert_eq!(made, n);
}

/// The listing item `POST /v1/listings` stores for `NewListing::in_city(city)` with the
/// variations of [`seed_listings`] (the API's defaults for what the body leaves out: 1 to 30 nights,
/// check-in 15:00, check-out 11:00).
pub fn seeded_listing(host: &User, city: &str, i: usize) -> ListingItem {
    let now = jiff::Timestamp::now();
    let fields = listing::ListingFields {
        title: "Quiet loft".into(),
        description: "Two rooms.\nNear the river.".into(),
        property_type: "loft".into(),
        address: listing::Address {
            line1: "Rua Augusta 1".into(),
            city: city.into(),
            region: Some("Lisboa".into()),
            country: "PT".into(),
            postal_code: Some("1100-001".into()),
        },
        timezone: "Europe/Lisbon".into(),
        max_guests: 2 + u32::try_from(i % 3).expect("small"),
        bedrooms: 1,
        beds: 1,
        bathrooms: 1,
        amenities: vec!["wifi".into()],
        nightly_price: shared::Money::new(10_000 + i64::try_from(i).expect("small"), shared::Currency::EUR),
        cleaning_fee: None,
        min_nights: 1,
        max_nights: 30,
        cancellation_policy: listing::CancellationPolicy::Moderate,
        check_in_time: "15:00".into(),
        check_out_time: "11:00".into(),
        booking_mode: Default::default(),
    };
    listings::store::new_listing(shared::ids::new_id_at("lst", now), &host.user_id, host.name.clone(), fields, now)
}

include!("stub.rs");
use octany_stub::{Feature, Limit, Plan};

#[derive(octany_actix_macros::Feature)]
#[octany(crate = "crate::octany_stub")]
struct Exports;

#[derive(octany_actix_macros::Feature)]
#[octany(crate = "crate::octany_stub", name = "single-sign-on")]
struct Sso;

#[derive(octany_actix_macros::Limit)]
#[octany(crate = "crate::octany_stub", free = 1)]
struct TeamSeats;

#[derive(octany_actix_macros::Plan, Clone, Copy, Debug, PartialEq)]
#[plan(crate = "crate::octany_stub")]
enum Plans {
    #[plan(product = 1227, limits(TeamSeats = 5))]
    Basic,
    #[plan(product = 1225, features(Exports, Sso), limits(TeamSeats = unlimited))]
    Pro,
}

fn main() {
    assert_eq!(Exports::NAME, "exports");
    assert_eq!(Sso::NAME, "single-sign-on");
    assert_eq!((TeamSeats::NAME, TeamSeats::FREE), ("team_seats", 1));
    assert_eq!(Plans::Basic.features(), &[] as &[&str]);
    assert_eq!(Plans::Pro.features(), &["exports", "single-sign-on"]);
    assert_eq!(Plans::Basic.limits(), &[("team_seats", Some(5))]);
    assert_eq!(Plans::Pro.limits(), &[("team_seats", None)]);
}

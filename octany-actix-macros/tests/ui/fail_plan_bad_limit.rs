include!("stub.rs");

#[derive(octany_actix_macros::Limit)]
#[octany(crate = "crate::octany_stub")]
struct Seats;

#[derive(octany_actix_macros::Plan, Clone, Copy)]
#[plan(crate = "crate::octany_stub")]
enum Plans {
    #[plan(product = 1225, limits(Seats = many))]
    Pro,
}

fn main() {}

include!("stub.rs");

#[derive(octany_actix_macros::Feature)]
#[octany(crate = "crate::octany_stub")]
struct Exports;

#[derive(octany_actix_macros::Plan, Clone, Copy)]
#[plan(crate = "crate::octany_stub")]
enum Plans {
    #[plan(product = 1225, features(Exprots))]
    Pro,
}

fn main() {}

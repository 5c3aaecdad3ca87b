#[derive(octany_actix_macros::Plan, Clone, Copy)]
enum Plans {
    #[plan(product = 1225)]
    Pro,
    Basic,
}

fn main() {}

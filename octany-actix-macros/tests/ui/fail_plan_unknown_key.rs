#[derive(octany_actix_macros::Plan, Clone, Copy)]
enum Plans {
    #[plan(prodcut = 1225)]
    Pro,
}

fn main() {}

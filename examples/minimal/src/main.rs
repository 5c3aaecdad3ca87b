//! `cargo run -p octany-example-minimal`, then open the printed URL.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (url, fake, server) = octany_example_minimal::start("127.0.0.1:8081").await?;
    println!("open {url} (the fake Octany: {})", fake.control_url());
    Ok(server.await?)
}

//! A small SMTP server for the notices' tests, in a process of its own:
//! `smtp-sink DIR [--refuse-first N]` listens on 127.0.0.1 (a free port,
//! printed as `listening PORT` on the first line of stdout) and writes
//! each mail it accepts to `DIR/N.eml` *before* it answers `250`, so a
//! file means "accepted". The first N mails are answered `451` (try again
//! later) and not kept.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

struct Sink {
    dir: PathBuf,
    refuse_first: usize,
    seen: AtomicUsize,
    kept: AtomicUsize,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .expect("usage: smtp-sink DIR [--refuse-first N]"),
    );
    let mut refuse_first = 0;
    while let Some(arg) = args.next() {
        if arg == "--refuse-first" {
            refuse_first = args.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        }
    }
    std::fs::create_dir_all(&dir)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("listening {}", listener.local_addr()?.port());
    let sink = Arc::new(Sink {
        dir,
        refuse_first,
        seen: AtomicUsize::new(0),
        kept: AtomicUsize::new(0),
    });
    loop {
        let (socket, _) = listener.accept().await?;
        let sink = sink.clone();
        tokio::spawn(async move {
            let _ = session(socket, &sink).await;
        });
    }
}

async fn session(socket: TcpStream, sink: &Sink) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 smtp-sink ready\r\n").await?;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        if command.starts_with("EHLO") {
            write
                .write_all(b"250-smtp-sink\r\n250 8BITMIME\r\n")
                .await?;
        } else if command.starts_with("HELO")
            || command.starts_with("MAIL")
            || command.starts_with("RCPT")
            || command.starts_with("RSET")
            || command.starts_with("NOOP")
        {
            write.write_all(b"250 ok\r\n").await?;
        } else if command == "DATA" {
            write.write_all(b"354 go on\r\n").await?;
            let mut mail = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                mail.push_str(&line);
            }
            let n = sink.seen.fetch_add(1, Ordering::SeqCst);
            if n < sink.refuse_first {
                write.write_all(b"451 try again later\r\n").await?;
                continue;
            }
            let kept = sink.kept.fetch_add(1, Ordering::SeqCst);
            std::fs::write(sink.dir.join(format!("{kept}.eml")), mail)?;
            write.write_all(b"250 accepted\r\n").await?;
        } else if command == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            write.write_all(b"502 not implemented\r\n").await?;
        }
    }
}

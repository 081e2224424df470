//! The admin port's connections (shard 0): framing, one command at a time in order,
//! each carried out by its family's module.

use std::rc::Rc;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};

use super::{
    counters, help_text, parse_command, render_loglevel, replication, stats, AdminCommand,
    AdminFramer, AdminInput, AdminReply, OK,
};
use crate::clock;
use crate::daemon::Shard;
use crate::metrics::loopback::Loopback;

pub async fn accept_loop(shard: Rc<Shard>, l: TcpListener) {
    loop {
        let conn = futures_lite::future::or(
            async { Some(l.accept().await.map_err(std::io::Error::from)) },
            async {
                shard.core.shutdown.requested().await;
                None
            },
        )
        .await;
        let Some(conn) = conn else { return };
        if let Ok(stream) = conn {
            let sh = shard.clone();
            glommio::spawn_local(async move { serve(&sh, stream).await }).detach();
        }
    }
}

async fn serve(shard: &Rc<Shard>, mut stream: TcpStream) {
    shard.core.lb.borrow_mut().incr(Loopback::AdminConnections);
    let mut buf = vec![0u8; 4096];
    let mut framer = AdminFramer::new();
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        framer.push(&buf[..n]);
        while let Some(input) = framer.next_input() {
            shard.core.lb.borrow_mut().incr(Loopback::AdminCommands);
            let (reply, quit) = match input {
                AdminInput::TooLong => (AdminReply::line_too_long().render(), false),
                AdminInput::Line(line) => command(shard, &line).await,
            };
            if stream.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
            if quit {
                let _ = stream.flush().await;
                return;
            }
        }
    }
}

/// One command line: the whole reply, and whether the connection ends.
async fn command(shard: &Rc<Shard>, line: &str) -> (String, bool) {
    let cmd = match parse_command(line) {
        Ok(c) => c,
        Err(reply) => return (reply.render(), false),
    };
    let reply = match cmd {
        AdminCommand::Help => help_text(),
        AdminCommand::Quit => return (String::new(), true),
        AdminCommand::Flush => counters::flush(shard).await,
        AdminCommand::Stats { heap } => stats::run(shard, heap).await,
        AdminCommand::Debug(d) => shard.debug.borrow_mut().run(&d),
        AdminCommand::LogLevel(l) => {
            // As the reference: a valid first level is applied even when the second
            // is refused.
            let log = &shard.core.cfg.log;
            if let Some(f) = l.file {
                log.set_file_level(f);
            }
            if let Some(s) = l.stderr {
                log.set_stderr_level(s);
            }
            match l.error {
                Some(e) => e.render(),
                None => {
                    let (file, stderr) = log.levels();
                    render_loglevel(file, stderr)
                }
            }
        }
        AdminCommand::FakeTime(_) if !clock::is_fake() => AdminReply::not_fake_time().render(),
        AdminCommand::FakeTime(Err(r)) => r.render(),
        AdminCommand::FakeTime(Ok(t)) => {
            clock::set_fake(t);
            OK.to_string()
        }
        AdminCommand::DeleteCtr(names) => counters::delete_ctr(shard, names).await,
        AdminCommand::DeletePattern(patterns) => counters::delete_pattern(shard, patterns).await,
        AdminCommand::Purge { max_old, max_age } => counters::purge(shard, max_old, max_age).await,
        AdminCommand::FlushSetting(_) | AdminCommand::LoadSetting(_) => OK.to_string(),
        AdminCommand::Replication(cmd) => replication::run(shard, cmd).await,
    };
    (reply, false)
}

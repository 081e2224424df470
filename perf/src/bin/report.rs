//! Daemon benchmark report: starts `istatd` (release build) on a temporary store, on
//! loopback ports 19500-19599, drives it with the load generator, and prints figures.
//! Asserts nothing.
//!
//! ```text
//! cargo build --release --bin istatd
//! cargo run --release -p istatd-perf --bin report -- --scenario all
//! ```
//!
//! Every scenario runs the same steps on its own fresh store:
//!
//! 1. start the daemon on an empty store, wait until the admin port accepts, RSS empty;
//! 2. build: send one sample to each of N counters at max rate, wait until the daemon
//!    recorded them, admin `flush` (files/s created through the daemon);
//! 3. restart on that store: stop time, start-up time until the admin port accepts and
//!    until `stats` lists every file, RSS idle after 3 s, RSS per counter file;
//! 4. load: K connections send over the N counters at max rate or a target rate for a
//!    duration; samples/s recorded by the daemon (admin `istatd.statserver.samples`
//!    before/after), CPU seconds per million samples, RSS;
//! 5. drain: wait until the daemon recorded everything sent (or stopped advancing);
//!    dropped = sent - recorded;
//! 6. stop (SIGTERM) and scan the daemon's log for warnings and errors.
//!
//! The daemon is always killed: on return, on panic (drop), on Ctrl-C/SIGTERM (handler
//! kills it at once) and if this process is killed (PR_SET_PDEATHSIG).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use istatd_perf::daemon::{
    self, check_interrupt, Daemon, DaemonSpec, Stats, COUNTERS, FILES, SAMPLES,
};
use istatd_perf::loadgen::{GenConfig, Generator};

#[derive(Parser, Debug, Clone)]
#[command(name = "report", about = "istatd daemon benchmark report")]
struct Args {
    /// Scenarios to run: a, b, c, a comma list (a,c) or all.
    #[arg(long, default_value = "all")]
    scenario: String,
    /// The daemon binary (default: target/release/istatd next to this binary).
    #[arg(long)]
    istatd: Option<PathBuf>,
    /// Stat port of scenario a; b uses +10, c +20; each admin port is the next one.
    /// All must be in 19500-19599.
    #[arg(long, default_value_t = 19510)]
    port: u16,
    /// Parent of the temporary per-scenario directories (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the stores and logs afterwards.
    #[arg(long)]
    keep: bool,
    /// Daemon `--shards`.
    #[arg(long, default_value_t = 2)]
    shards: usize,
    /// Generator TCP connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Daemon `--retention`.
    #[arg(long, default_value = "10s:1h,5m:1d")]
    retention: String,
    /// Extra daemon argument (repeatable), e.g. --daemon-arg=--allocation-strategy --daemon-arg=2.
    #[arg(long = "daemon-arg", allow_hyphen_values = true)]
    daemon_args: Vec<String>,
    /// Scenario a: counters.
    #[arg(long, default_value_t = 2_000)]
    a_counters: usize,
    /// Scenario b: counters.
    #[arg(long, default_value_t = 100_000)]
    b_counters: usize,
    /// Scenarios a and b: seconds of max-rate load.
    #[arg(long, default_value_t = 20)]
    ab_duration: u64,
    /// Scenario c: counters (2 files each with the default retention).
    #[arg(long, default_value_t = 250_000)]
    c_counters: usize,
    /// Scenario c: target samples/s.
    #[arg(long, default_value_t = 60_000.0)]
    c_rate: f64,
    /// Scenario c: seconds of load.
    #[arg(long, default_value_t = 60)]
    c_duration: u64,
    /// Scenarios a and b: build the store with a first pass over the new counters at
    /// max rate for this many seconds (creation included), instead of one sample per
    /// counter; 0 = one sample each.
    #[arg(long, default_value_t = 0)]
    first_pass: u64,
    /// Bound on building a store (sending one sample per counter until recorded), s.
    #[arg(long, default_value_t = 900)]
    build_timeout: u64,
    /// Bound on waiting for the daemon to record what was sent after a load, s.
    #[arg(long, default_value_t = 120)]
    drain_timeout: u64,
    /// Bound on a daemon's exit after SIGTERM (then SIGKILL), s.
    #[arg(long, default_value_t = 120)]
    stop_timeout: u64,
    /// Bound on a start-up over an existing store, s.
    #[arg(long, default_value_t = 600)]
    startup_timeout: u64,
}

#[derive(Debug, Clone)]
struct Scenario {
    key: char,
    title: String,
    counters: usize,
    rate: Option<f64>,
    duration: Duration,
}

/// Everything measured in one scenario (None: not reached).
#[derive(Debug, Default, Clone)]
struct Figures {
    key: char,
    title: String,
    counters_sent_to: usize,
    first_start_s: Option<f64>,
    rss_empty_kib: Option<u64>,
    build_s: Option<f64>,
    build_sent: Option<u64>,
    build_recorded: Option<u64>,
    build_flush_s: Option<f64>,
    /// `--first-pass`: when the last counter file appeared, s after the first sample.
    files_done_s: Option<f64>,
    /// `--first-pass`: samples recorded / (generator time + drain).
    first_pass_rate: Option<f64>,
    store_counters: Option<u64>,
    store_files: Option<u64>,
    disk_bytes: Option<u64>,
    stop_s: Option<f64>,
    stop_clean: Option<bool>,
    startup_s: Option<f64>,
    startup_all_files_s: Option<f64>,
    rss_idle_kib: Option<u64>,
    target_rate: Option<f64>,
    load_s: Option<f64>,
    sent: Option<u64>,
    sent_rate: Option<f64>,
    recorded_in_window: Option<u64>,
    accepted_rate: Option<f64>,
    drain_s: Option<f64>,
    recorded_total: Option<u64>,
    dropped: Option<i64>,
    cpu_user_sys: Option<(f64, f64)>,
    still_recording: Option<bool>,
    /// Page hits, misses, page writes, header writes during load and drain.
    store_load: Option<[u64; 4]>,
    cpu_s: Option<f64>,
    cpu_per_m: Option<f64>,
    gen_cpu_s: Option<f64>,
    /// CPU seconds of every other process during the load window.
    other_cpu_s: Option<f64>,
    rss_load_max_kib: Option<u64>,
    hwm_kib: Option<u64>,
    fds_max: Option<usize>,
    admin_latency_max_s: Option<f64>,
    final_stop_s: Option<f64>,
    problems: Vec<String>,
}

impl Figures {
    fn rss_per_file(&self) -> Option<f64> {
        Some(self.rss_idle_kib? as f64 * 1024.0 / self.store_files?.max(1) as f64)
    }

    fn rss_per_file_marginal(&self) -> Option<f64> {
        let d = self.rss_idle_kib? as f64 - self.rss_empty_kib? as f64;
        Some(d * 1024.0 / self.store_files?.max(1) as f64)
    }
}

struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.keep {
            println!("kept {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn main() {
    let args = Args::parse();
    daemon::install_interrupt_handler();
    let code = match run(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("report: {e}");
            if daemon::interrupted() {
                130
            } else {
                1
            }
        }
    };
    std::process::exit(code);
}

fn run(args: &Args) -> Result<(), String> {
    if !(19500..=19578).contains(&args.port) {
        return Err(format!(
            "--port {}: the stat and admin ports of the three scenarios (--port, +10, +20 \
             and the next port each) must be in 19500-19599",
            args.port
        ));
    }
    let exe = daemon::istatd_binary(args.istatd.as_deref())?;
    let scenarios = select(args)?;
    let base = args
        .dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("istatd-report-{}", std::process::id()));
    std::fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
    let _guard = TempDir {
        path: base.clone(),
        keep: args.keep,
    };

    print_header(args, &exe, &base);
    let mut all = Vec::new();
    for sc in &scenarios {
        // Each scenario on its own pair of ports: a on --port, b on --port + 10, ...
        let stat_port = args.port + 10 * (sc.key as u16 - b'a' as u16);
        if stat_port > 19598 {
            return Err(format!(
                "--port {}: scenario {} would use port {stat_port}, outside 19500-19599",
                args.port, sc.key
            ));
        }
        let mut f = Figures {
            key: sc.key,
            title: sc.title.clone(),
            ..Figures::default()
        };
        println!("\n== scenario {}: {}", sc.key, sc.title);
        let dir = base.join(format!("scenario-{}", sc.key));
        let _ = std::fs::remove_dir_all(&dir);
        let spec = DaemonSpec {
            exe: exe.clone(),
            dir: dir.clone(),
            stat_port,
            admin_port: stat_port + 1,
            http_port: 0,
            shards: args.shards,
            retention: args.retention.clone(),
            flush_secs: 300,
            extra: args.daemon_args.clone(),
        };
        println!("daemon: {}", spec.command_line());
        let res = run_scenario(args, sc, &spec, &mut f);
        if let Err(e) = &res {
            println!("scenario {} stopped: {e}", sc.key);
            f.problems.insert(0, format!("scenario aborted: {e}"));
        }
        print_problems(&f);
        all.push(f);
        if daemon::interrupted() {
            break;
        }
    }
    print_table(args, &all);
    if !args.keep {
        println!("removing {} ...", base.display());
    }
    check_interrupt()
}

fn select(args: &Args) -> Result<Vec<Scenario>, String> {
    let ab = Duration::from_secs(args.ab_duration);
    let a = Scenario {
        key: 'a',
        title: format!(
            "{} counters, max rate, {} s",
            args.a_counters, args.ab_duration
        ),
        counters: args.a_counters,
        rate: None,
        duration: ab,
    };
    let b = Scenario {
        key: 'b',
        title: format!(
            "{} counters, max rate, {} s",
            args.b_counters, args.ab_duration
        ),
        counters: args.b_counters,
        rate: None,
        duration: ab,
    };
    let c = Scenario {
        key: 'c',
        title: format!(
            "{} counters (x retentions = counter files), {:.0} samples/s for {} s",
            args.c_counters, args.c_rate, args.c_duration
        ),
        counters: args.c_counters,
        rate: Some(args.c_rate),
        duration: Duration::from_secs(args.c_duration),
    };
    let mut out = Vec::new();
    for part in args.scenario.split(',') {
        match part.trim() {
            "all" => out.extend([a.clone(), b.clone(), c.clone()]),
            "a" => out.push(a.clone()),
            "b" => out.push(b.clone()),
            "c" => out.push(c.clone()),
            other => return Err(format!("unknown scenario {other:?} (a, b, c or all)")),
        }
    }
    Ok(out)
}

fn print_header(args: &Args, exe: &Path, base: &Path) {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let (nofile_soft, nofile_hard) = daemon::rlimit(libc::RLIMIT_NOFILE);
    let (memlock, _) = daemon::rlimit(libc::RLIMIT_MEMLOCK);
    println!("# istatd daemon benchmark report, {}", utc_now());
    println!(
        "machine: {cores} cores, {:.1} GiB RAM, open files soft {nofile_soft} / hard {nofile_hard}, locked memory {} KiB",
        daemon::mem_total_kib().unwrap_or(0) as f64 / 1048576.0,
        memlock / 1024
    );
    println!(
        "note: the load generator ({} connections, threads of this process) and the daemon \
         ({} shards, not pinned unless --daemon-arg=--pin-cores) share these {cores} cores; \
         figures are for loopback TCP",
        args.connections, args.shards
    );
    println!(
        "load average at start: {} (other processes on the machine compete for the same cores; \
         each load phase reports their CPU use)",
        daemon::load_average()
    );
    println!("daemon binary: {}", exe.display());
    println!("work directory: {}", base.display());
}

/// Poll interval while waiting.
const POLL: Duration = Duration::from_millis(250);

fn run_scenario(
    args: &Args,
    sc: &Scenario,
    spec: &DaemonSpec,
    f: &mut Figures,
) -> Result<(), String> {
    let stat_addr = SocketAddr::from(([127, 0, 0, 1], spec.stat_port));
    f.counters_sent_to = sc.counters;

    // 1. Empty store.
    let mut d = Daemon::spawn(spec)?;
    let ready = d.wait_ready(Duration::from_secs(60))?;
    f.first_start_s = Some(ready.as_secs_f64());
    daemon::sleep(Duration::from_secs(1))?;
    f.rss_empty_kib = d.rss_kib();
    println!(
        "start on an empty store: admin port accepts after {:.3} s; RSS {}",
        ready.as_secs_f64(),
        kib(f.rss_empty_kib)
    );

    // 2. Build the store: one sample per counter, or a first pass at max rate.
    let first_pass = (args.first_pass > 0 && sc.rate.is_none()).then_some(args.first_pass);
    let mut cfg = GenConfig::new(stat_addr, args.connections, sc.counters);
    match first_pass {
        Some(secs) => cfg.duration = Some(Duration::from_secs(secs)),
        None => {
            cfg.samples = Some(sc.counters as u64);
            cfg.duration = Some(Duration::from_secs(args.build_timeout));
        }
    }
    let base = d.stats()?.get(SAMPLES);
    println!(
        "build: {} {} counters (+{} parents created by the daemon)...",
        match first_pass {
            Some(secs) => format!("first pass at max rate for {secs} s over"),
            None => "sending one sample to each of".to_string(),
        },
        sc.counters,
        cfg.parent_counters()
    );
    let t0 = Instant::now();
    let gen = Generator::start(&cfg).map_err(|e| format!("loadgen connect: {e}"))?;
    let deadline = t0 + Duration::from_secs(args.build_timeout);
    let mut last_print = Instant::now();
    let mut files_seen = (0u64, 0f64);
    while !gen.is_finished() {
        daemon::sleep(POLL)?;
        d.check_alive()?;
        if first_pass.is_some() {
            let n = d.stats()?.get(FILES);
            if n > files_seen.0 {
                files_seen = (n, t0.elapsed().as_secs_f64());
            }
        }
        if last_print.elapsed() >= Duration::from_secs(if first_pass.is_some() { 2 } else { 10 }) {
            let s = d.stats()?;
            println!(
                "  {:5.0} s: {} sent, {} recorded, {} counters, {} files",
                t0.elapsed().as_secs_f64(),
                gen.sent(),
                s.get(SAMPLES) - base,
                s.get(COUNTERS),
                s.get(FILES)
            );
            last_print = Instant::now();
        }
        if Instant::now() > deadline + Duration::from_secs(40) {
            gen.stop();
        }
    }
    let g = gen.join();
    for e in g.errors() {
        f.problems.push(format!("build: loadgen {e}"));
    }
    let dr = drain(
        &mut d,
        base,
        g.sent,
        deadline.max(Instant::now() + Duration::from_secs(60)),
        true,
    )?;
    let recorded = dr.recorded;
    if first_pass.is_some() {
        let n = d.stats()?.get(FILES);
        if n > files_seen.0 {
            files_seen = (n, t0.elapsed().as_secs_f64());
        }
        f.files_done_s = Some(files_seen.1);
        f.first_pass_rate = Some(recorded as f64 / t0.elapsed().as_secs_f64());
        println!(
            "first pass: {recorded} recorded in {:.2} s = {:.0} samples/s; the last of {} files \
             appeared after {:.2} s = {:.0} files/s",
            t0.elapsed().as_secs_f64(),
            recorded as f64 / t0.elapsed().as_secs_f64(),
            files_seen.0,
            files_seen.1,
            files_seen.0 as f64 / files_seen.1.max(1e-3)
        );
    }
    let flush = d.flush()?;
    let build = t0.elapsed().as_secs_f64();
    let s = d.stats()?;
    f.build_s = Some(build);
    f.build_sent = Some(g.sent);
    f.build_recorded = Some(recorded);
    f.build_flush_s = Some(flush.as_secs_f64());
    f.store_counters = Some(s.get(COUNTERS));
    f.store_files = Some(s.get(FILES));
    let (disk_files, disk_bytes) = daemon::disk_usage(&spec.store());
    f.disk_bytes = Some(disk_bytes);
    println!(
        "build: {} sent, {} recorded in {build:.1} s (flush {:.2} s): {} counters, {} files \
         ({} files on disk, {:.2} GiB) = {:.0} files/s",
        g.sent,
        recorded,
        flush.as_secs_f64(),
        s.get(COUNTERS),
        s.get(FILES),
        disk_files,
        disk_bytes as f64 / (1u64 << 30) as f64,
        s.get(FILES) as f64 / build
    );
    if first_pass.is_none() && g.sent < sc.counters as u64 {
        f.problems.push(format!(
            "build: only {} of {} samples sent within {} s (store has {} counters)",
            g.sent,
            sc.counters,
            args.build_timeout,
            s.get(COUNTERS)
        ));
    }
    if recorded < g.sent {
        f.problems.push(format!(
            "build: {} samples sent, {} recorded: {} {}",
            g.sent,
            recorded,
            g.sent - recorded,
            if dr.still_recording {
                "not recorded yet when the build bound ran out"
            } else {
                "dropped"
            }
        ));
    }
    note_stats(&s, f, "build");

    // 3. Restart on the store.
    let (stop, clean) = d.stop(Duration::from_secs(args.stop_timeout));
    f.stop_s = Some(stop.as_secs_f64());
    f.stop_clean = Some(clean);
    if !clean {
        f.problems.push(format!(
            "SIGTERM did not stop the daemon within {} s ({} counters); killed",
            args.stop_timeout,
            s.get(COUNTERS)
        ));
    }
    collect_problems(&d, f);
    drop(d);
    let want_files = s.get(FILES);
    let mut d = Daemon::spawn(spec)?;
    let startup = d.wait_ready(Duration::from_secs(args.startup_timeout))?;
    f.startup_s = Some(startup.as_secs_f64());
    // Until the shards report every file (the store scan may run after the listeners).
    let mut files_now = 0;
    while d.spawned.elapsed() < Duration::from_secs(args.startup_timeout) {
        files_now = d.stats()?.get(FILES);
        if files_now >= want_files {
            f.startup_all_files_s = Some(d.spawned.elapsed().as_secs_f64());
            break;
        }
        daemon::sleep(Duration::from_millis(20))?;
    }
    daemon::sleep(Duration::from_secs(3))?;
    f.rss_idle_kib = d.rss_kib();
    println!(
        "restart: stop took {:.2} s{}; start-up over {} files: admin port accepts after {:.3} s, \
         stats lists {} files after {}; RSS idle {} = {} per file ({} per file above the empty daemon)",
        stop.as_secs_f64(),
        if clean { "" } else { " (killed)" },
        want_files,
        startup.as_secs_f64(),
        files_now,
        secs(f.startup_all_files_s),
        kib(f.rss_idle_kib),
        bytes(f.rss_per_file()),
        bytes(f.rss_per_file_marginal())
    );
    if files_now < want_files {
        f.problems.push(format!(
            "after restart the daemon lists {files_now} files, {want_files} before"
        ));
    }

    // 4. Load.
    let mut cfg = GenConfig::new(stat_addr, args.connections, sc.counters);
    cfg.rate = sc.rate;
    cfg.duration = Some(sc.duration);
    f.target_rate = sc.rate;
    println!(
        "load: {} connections over {} counters, {} for {} s...",
        args.connections,
        sc.counters,
        sc.rate
            .map_or("max rate".to_string(), |r| format!("{r:.0} samples/s")),
        sc.duration.as_secs()
    );
    let (s0, t_s0) = timed_stats(&mut d)?;
    let base = s0.get(SAMPLES);
    let cpu0 = d.cpu_secs().unwrap_or(0.0);
    let split0 = d.cpu_split().unwrap_or_default();
    let gcpu0 = daemon::self_cpu_secs().unwrap_or(0.0);
    let busy0 = daemon::machine_busy_secs().unwrap_or(0.0);
    let gen = Generator::start(&cfg).map_err(|e| format!("loadgen connect: {e}"))?;
    let mut rss_max = 0u64;
    let mut fds_max = 0usize;
    let mut lat_max = 0f64;
    let mut last = (Instant::now(), base, 0u64);
    let mut last_cpu = cpu0;
    let hard_end = Instant::now() + sc.duration + Duration::from_secs(60);
    while !gen.is_finished() {
        daemon::sleep(POLL)?;
        d.check_alive()?;
        rss_max = rss_max.max(d.rss_kib().unwrap_or(0));
        fds_max = fds_max.max(d.open_fds().unwrap_or(0));
        if last.0.elapsed() >= Duration::from_secs(5) {
            let t = Instant::now();
            let s = d.stats()?;
            lat_max = lat_max.max(t.elapsed().as_secs_f64());
            let rec = s.get(SAMPLES);
            let sent = gen.sent();
            let dt = last.0.elapsed().as_secs_f64();
            // CPU per million samples of this interval alone: the load phase after a
            // restart (files loading) and the steady part differ by a factor.
            let cpu = d.cpu_secs().unwrap_or(last_cpu);
            let per_m = if rec > last.1 {
                format!("{:.1}", (cpu - last_cpu) * 1e6 / (rec - last.1) as f64)
            } else {
                "-".to_string()
            };
            println!(
                "  {:5.1} s: sent {sent} ({:.0}/s), recorded {} ({:.0}/s), RSS {}, \
                 daemon CPU {:.2} cores ({per_m} s per million)",
                gen.elapsed().as_secs_f64(),
                (sent - last.2) as f64 / dt,
                rec - base,
                (rec - last.1) as f64 / dt,
                kib(d.rss_kib()),
                (cpu - last_cpu) / dt
            );
            last = (Instant::now(), rec, sent);
            last_cpu = cpu;
        }
        if Instant::now() > hard_end {
            gen.stop();
        }
    }
    let g = gen.join();
    let (s1, t_s1) = timed_stats(&mut d)?;
    let cpu1 = d.cpu_secs().unwrap_or(cpu0);
    let gcpu1 = daemon::self_cpu_secs().unwrap_or(gcpu0);
    let busy1 = daemon::machine_busy_secs().unwrap_or(busy0);
    let other = ((busy1 - busy0) - (cpu1 - cpu0) - (gcpu1 - gcpu0)).max(0.0);
    f.other_cpu_s = Some(other);
    for e in g.errors() {
        f.problems.push(format!("load: loadgen {e}"));
    }
    println!(
        "load: sent per connection: {}",
        g.connections
            .iter()
            .map(|c| c.sent.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let in_window = s1.get(SAMPLES) - base;
    let window = t_s1.duration_since(t_s0).as_secs_f64();
    f.load_s = Some(g.elapsed.as_secs_f64());
    f.sent = Some(g.sent);
    f.sent_rate = Some(g.rate());
    f.recorded_in_window = Some(in_window);
    f.accepted_rate = Some(in_window as f64 / window);
    f.gen_cpu_s = Some(gcpu1 - gcpu0);
    println!(
        "load: sent {} in {:.2} s = {:.0}/s; daemon recorded {in_window} in the {window:.2} s \
         between stats = {:.0} samples/s; daemon CPU {:.2} s, generator CPU {:.2} s, \
         other processes {other:.2} CPU s",
        g.sent,
        g.elapsed.as_secs_f64(),
        g.rate(),
        in_window as f64 / window,
        cpu1 - cpu0,
        gcpu1 - gcpu0
    );

    // 5. Drain.
    let td = Instant::now();
    let dr = drain(
        &mut d,
        base,
        g.sent,
        Instant::now() + Duration::from_secs(args.drain_timeout),
        false,
    )?;
    let (recorded, s2) = (dr.recorded, dr.stats.clone());
    f.still_recording = Some(dr.still_recording);
    let cpu2 = d.cpu_secs().unwrap_or(cpu1);
    let split2 = d.cpu_split().unwrap_or(split0);
    f.cpu_user_sys = Some((split2.0 - split0.0, split2.1 - split0.1));
    f.drain_s = Some(td.elapsed().as_secs_f64());
    f.recorded_total = Some(recorded);
    f.dropped = Some(g.sent as i64 - recorded as i64);
    f.cpu_s = Some(cpu2 - cpu0);
    f.cpu_per_m = Some((cpu2 - cpu0) / (recorded.max(1) as f64 / 1e6));
    f.rss_load_max_kib = Some(rss_max.max(d.rss_kib().unwrap_or(0)));
    f.hwm_kib = d.hwm_kib();
    f.fds_max = Some(fds_max);
    f.admin_latency_max_s = Some(lat_max);
    println!(
        "drain: {recorded} of {} recorded after {:.2} s more; {} {}; daemon CPU {:.2} s (user {:.2}, system {:.2}) = {:.2} s per million samples; \
         RSS max {} (peak VmHWM {}), descriptors max {}",
        g.sent,
        f.drain_s.unwrap_or(0.0),
        g.sent as i64 - recorded as i64,
        if dr.still_recording {
            "not recorded yet (the daemon was still recording when the drain bound ran out)"
        } else {
            "dropped"
        },
        cpu2 - cpu0,
        split2.0 - split0.0,
        split2.1 - split0.1,
        f.cpu_per_m.unwrap_or(0.0),
        kib(f.rss_load_max_kib),
        kib(f.hwm_kib),
        fds_max
    );
    if recorded < g.sent {
        f.problems.push(format!(
            "load: {} samples sent, {} recorded: {} {}",
            g.sent,
            recorded,
            g.sent - recorded,
            if dr.still_recording {
                format!(
                    "not recorded {} s after the end (still recording: a backlog)",
                    args.drain_timeout
                )
            } else {
                "dropped (recording had stopped advancing)".to_string()
            }
        ));
    }
    let delta = |n: &str| s2.get(n).saturating_sub(s0.get(n));
    f.store_load = Some([
        delta("istatd.store.page_hits"),
        delta("istatd.store.page_misses"),
        delta("istatd.store.page_writes"),
        delta("istatd.store.header_writes"),
    ]);
    println!(
        "store during load: page hits {}, page misses {}, page writes {}, header writes {}, \
         open files {} (peak {}), cached pages {}",
        delta("istatd.store.page_hits"),
        delta("istatd.store.page_misses"),
        delta("istatd.store.page_writes"),
        delta("istatd.store.header_writes"),
        s2.get("istatd.store.open_files"),
        s2.get("istatd.store.open_files_peak"),
        s2.get("istatd.store.cached_pages")
    );
    note_stats(&s2, f, "load");

    // 6. Stop.
    let (stop, clean) = d.stop(Duration::from_secs(args.stop_timeout));
    f.final_stop_s = Some(stop.as_secs_f64());
    if !clean {
        f.problems.push(format!(
            "SIGTERM did not stop the daemon within {} s; killed",
            args.stop_timeout
        ));
    } else if let Some(st) = d.exit_status() {
        if !st.success() {
            f.problems
                .push(format!("daemon exit status after SIGTERM: {st}"));
        }
    }
    collect_problems(&d, f);
    Ok(())
}

/// Stats and the time between request and reply midpoint.
fn timed_stats(d: &mut Daemon) -> Result<(Stats, Instant), String> {
    let t = Instant::now();
    let s = d.stats()?;
    let e = t.elapsed();
    Ok((s, t + e / 2))
}

/// How a drain ended.
struct Drained {
    /// Samples recorded above the base.
    recorded: u64,
    /// The bound ran out while the daemon was still recording: what is missing is a
    /// backlog (socket buffers, shard queues), not known to be lost.
    still_recording: bool,
    stats: Stats,
}

/// Wait until the daemon recorded `sent` samples above `base`, or stopped advancing
/// for 3 s, or `deadline`.
fn drain(
    d: &mut Daemon,
    base: u64,
    sent: u64,
    deadline: Instant,
    quiet: bool,
) -> Result<Drained, String> {
    let mut last = u64::MAX;
    let mut since = Instant::now();
    let mut printed = Instant::now();
    loop {
        let s = d.stats()?;
        let rec = s.get(SAMPLES).saturating_sub(base);
        if rec >= sent || Instant::now() > deadline {
            return Ok(Drained {
                recorded: rec,
                still_recording: rec < sent && since.elapsed() < Duration::from_secs(3),
                stats: s,
            });
        }
        if rec != last {
            last = rec;
            since = Instant::now();
        } else if since.elapsed() > Duration::from_secs(3) {
            return Ok(Drained {
                recorded: rec,
                still_recording: false,
                stats: s,
            });
        }
        if !quiet && printed.elapsed() > Duration::from_secs(5) {
            println!("  draining: {rec} of {sent} recorded");
            printed = Instant::now();
        }
        if quiet && printed.elapsed() > Duration::from_secs(10) {
            println!(
                "  waiting: {rec} of {sent} recorded, {} counters, {} files",
                s.get(COUNTERS),
                s.get(FILES)
            );
            printed = Instant::now();
        }
        daemon::sleep(POLL)?;
    }
}

/// Daemon-side counters that mean trouble.
fn note_stats(s: &Stats, f: &mut Figures, phase: &str) {
    for name in [
        "istatd.statserver.commands.bad",
        "istatd.counter.from_future",
        "istatd.counter.from_past",
        "istatd.counter.rejected",
        "istatd.store.bad_files",
        "istatd.store.too_old",
        "istatd.store.write_errors",
    ] {
        let v = s.get(name);
        if v > 0 {
            let p = format!("{phase}: {name}={v}");
            if !f.problems.contains(&p) {
                f.problems.push(p);
            }
        }
    }
}

/// WARN/ERROR log lines, summarized: the count and the first few distinct messages.
fn collect_problems(d: &Daemon, f: &mut Figures) {
    let lines = d.problems();
    if lines.is_empty() {
        return;
    }
    f.problems.push(format!(
        "daemon pid {}: {} warning/error lines in {} / {}",
        d.pid,
        lines.len(),
        d.spec.log_path().display(),
        d.spec.stderr_path().display()
    ));
    let mut seen: Vec<String> = Vec::new();
    for l in &lines {
        // Without the timestamp, to group repeats.
        let msg = l.split_once('Z').map_or(l.as_str(), |(_, m)| m).trim();
        let key: String = msg.chars().take(80).collect();
        if !seen.iter().any(|s| s.starts_with(&key)) {
            seen.push(msg.to_string());
            if seen.len() >= 6 {
                break;
            }
        }
    }
    for s in seen {
        f.problems.push(format!("  {s}"));
    }
}

fn print_problems(f: &Figures) {
    if f.problems.is_empty() {
        println!("problems: none seen");
    } else {
        println!("problems:");
        for p in &f.problems {
            println!("  {p}");
        }
    }
}

fn print_table(args: &Args, all: &[Figures]) {
    if all.is_empty() {
        return;
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "\n# summary ({}, {cores} cores shared by the daemon ({} shards) and the load generator ({} connections))",
        utc_now(),
        args.shards,
        args.connections
    );
    type Row = (&'static str, fn(&Figures) -> String);
    let rows: Vec<Row> = vec![
        ("counters sent to", |f| f.counters_sent_to.to_string()),
        ("store: counters (with parents)", |f| num(f.store_counters)),
        ("store: counter files", |f| num(f.store_files)),
        ("store: disk GiB", |f| {
            f.disk_bytes.map_or("-".into(), |b| {
                format!("{:.2}", b as f64 / (1u64 << 30) as f64)
            })
        }),
        ("build: s (one sample per counter, or --first-pass)", |f| {
            secs(f.build_s)
        }),
        ("first pass: samples/s recorded, creation included", |f| {
            f.first_pass_rate.map_or("-".into(), |r| format!("{r:.0}"))
        }),
        ("first pass: files/s until the last file", |f| {
            match (f.store_files, f.files_done_s) {
                (Some(n), Some(s)) => format!("{:.0}", n as f64 / s.max(1e-3)),
                _ => "-".into(),
            }
        }),
        ("build: files created/s", |f| {
            match (f.store_files, f.build_s) {
                (Some(n), Some(s)) => format!("{:.0}", n as f64 / s),
                _ => "-".into(),
            }
        }),
        ("build: dropped", |f| {
            match (f.build_sent, f.build_recorded) {
                (Some(s), Some(r)) => (s as i64 - r as i64).to_string(),
                _ => "-".into(),
            }
        }),
        ("start-up, empty store: s", |f| secs(f.first_start_s)),
        ("RSS, empty store: MiB", |f| mib(f.rss_empty_kib)),
        ("stop (SIGTERM) with the store: s", |f| secs(f.stop_s)),
        ("start-up over the store: s", |f| secs(f.startup_s)),
        ("  until stats lists all files: s", |f| {
            secs(f.startup_all_files_s)
        }),
        ("RSS idle after restart: MiB", |f| mib(f.rss_idle_kib)),
        ("RSS per counter file: bytes", |f| bytes(f.rss_per_file())),
        ("  above the empty daemon: bytes", |f| {
            bytes(f.rss_per_file_marginal())
        }),
        ("load: target samples/s", |f| {
            f.target_rate.map_or("max".into(), |r| format!("{r:.0}"))
        }),
        ("load: s", |f| secs(f.load_s)),
        ("load: samples sent", |f| num(f.sent)),
        ("load: sent/s (generator)", |f| rate(f.sent_rate)),
        ("load: recorded/s (daemon stats)", |f| rate(f.accepted_rate)),
        ("load: drain after the end: s", |f| secs(f.drain_s)),
        ("load: recorded in all", |f| num(f.recorded_total)),
        ("load: sent - recorded", |f| {
            f.dropped.map_or("-".into(), |d| d.to_string())
        }),
        ("  = dropped, or backlog?", |f| {
            match (f.dropped, f.still_recording) {
                (Some(0), _) => "none".into(),
                (Some(_), Some(true)) => "backlog".into(),
                (Some(_), Some(false)) => "dropped".into(),
                _ => "-".into(),
            }
        }),
        ("load: page misses (page loads)", |f| {
            f.store_load.map_or("-".into(), |v| v[1].to_string())
        }),
        ("load: page writes", |f| {
            f.store_load.map_or("-".into(), |v| v[2].to_string())
        }),
        ("daemon CPU: s", |f| secs(f.cpu_s)),
        ("  user / system: s", |f| {
            f.cpu_user_sys
                .map_or("-".into(), |(u, s)| format!("{u:.1} / {s:.1}"))
        }),
        ("daemon CPU s per million samples", |f| secs(f.cpu_per_m)),
        ("generator CPU: s", |f| secs(f.gen_cpu_s)),
        ("other processes' CPU during load: s", |f| {
            secs(f.other_cpu_s)
        }),
        ("RSS under load, max: MiB", |f| mib(f.rss_load_max_kib)),
        ("peak RSS (VmHWM): MiB", |f| mib(f.hwm_kib)),
        ("descriptors under load, max", |f| {
            f.fds_max.map_or("-".into(), |n| n.to_string())
        }),
        ("admin stats reply under load, max: s", |f| {
            secs(f.admin_latency_max_s)
        }),
        ("final stop (SIGTERM): s", |f| secs(f.final_stop_s)),
        ("problems", |f| {
            if f.problems.is_empty() {
                "none".into()
            } else {
                format!(
                    "{} (see above)",
                    f.problems.iter().filter(|p| !p.starts_with("  ")).count()
                )
            }
        }),
    ];
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(10);
    let cols: Vec<Vec<String>> = all
        .iter()
        .map(|f| rows.iter().map(|r| (r.1)(f)).collect())
        .collect();
    let widths: Vec<usize> = cols
        .iter()
        .map(|c| c.iter().map(|s| s.len()).max().unwrap_or(1).max(12))
        .collect();
    let mut out = String::new();
    let _ = write!(out, "| {:w0$} |", "figure");
    for (f, w) in all.iter().zip(&widths) {
        let _ = write!(out, " {:>w$} |", format!("scenario {}", f.key));
    }
    out.push('\n');
    let _ = write!(out, "|{}|", "-".repeat(w0 + 2));
    for w in &widths {
        let _ = write!(out, "{}:|", "-".repeat(w + 1));
    }
    out.push('\n');
    for (i, r) in rows.iter().enumerate() {
        let _ = write!(out, "| {:w0$} |", r.0);
        for (c, w) in cols.iter().zip(&widths) {
            let _ = write!(out, " {:>w$} |", c[i]);
        }
        out.push('\n');
    }
    print!("{out}");
    for f in all {
        println!("scenario {}: {}", f.key, f.title);
    }
}

fn num(v: Option<u64>) -> String {
    v.map_or("-".into(), |n| n.to_string())
}

fn secs(v: Option<f64>) -> String {
    v.map_or("-".into(), |s| {
        if s < 10.0 {
            format!("{s:.3}")
        } else {
            format!("{s:.1}")
        }
    })
}

fn rate(v: Option<f64>) -> String {
    v.map_or("-".into(), |r| format!("{r:.0}"))
}

fn kib(v: Option<u64>) -> String {
    v.map_or("-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn mib(v: Option<u64>) -> String {
    v.map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0))
}

fn bytes(v: Option<f64>) -> String {
    v.map_or("-".into(), |b| format!("{b:.0}"))
}

/// `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Civil from days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

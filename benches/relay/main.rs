//! End-to-end benchmark of claude-relay: real release-built `relay-channel` processes driven over
//! stdio, the `relay-hub` they start, and the kernel floors they sit on.
//!
//! Run with `cargo bench --bench relay`; set `RELAY_BENCH_OUT=some/file.md` to also get the
//! results as markdown. `docs/benchmarks.md` explains every figure and how it is taken.
//!
//! This file says what is measured, in order; [`measure`] measures it (with [`procfs`] reading
//! memory and CPU), [`floor`] sets the hub beside a minimal forwarder and counts its system
//! calls, [`thousand`] puts a thousand sessions on one hub, [`federation`] measures hubs
//! federated through NATS, and [`report`] turns the results into a table. The channels, the
//! temporary world and the process guards are the test kit's (`testkit`), as in the tests.
//!
//! Everything runs in a temporary `CLAUDE_PLUGIN_DATA` and `HOME`, never the real ones. Every
//! process started here is killed by pid when its owner drops (also when a phase panics); the hub,
//! which daemonizes and so is nobody's child, is killed by the pid in `hub.lock`, and only after
//! checking that this pid is alive and runs in the temporary data directory. Every wait is
//! bounded.

mod federation;
mod floor;
mod measure;
mod procfs;
mod report;
mod thousand;

use std::{fs, path::Path, thread, time::Instant};

use federation::Federated;
use floor::{FLOOR_RT_ITERS, HubFloor, STRACE_RT_ITERS};
use measure::{
    CLI_ITERS, CommandLine, FANOUTS, Fanout, Floors, RT_ITERS, Results, RoundTrips, SETTLE,
    START_ITERS, Starts, idle_channel_memory, world,
};
use report::{Machine, Report, load_average};
use thousand::{THOUSAND_RAW, Thousand};

fn main() {
    if floor::serve_as_forwarder() {
        return;
    }
    let began = Instant::now();
    println!("claude-relay benchmark: {}", testkit::bins!().channel);
    let machine = Machine::describe();
    println!("{}\n", machine.summary());

    println!("measuring floors ...");
    let floors = Floors::measure();

    // Early, while the machine is quiet: CPU per round trip is what noise moves most.
    println!(
        "measuring {FLOOR_RT_ITERS} round trips through a minimal forwarder and through the hub, \
         then the hub's system calls over {STRACE_RT_ITERS} ..."
    );
    let hub_floor = HubFloor::measure();

    let mut world = world();
    let mut alpha = world.channel("alpha");
    let mut beta = world.channel("beta");
    println!(
        "hub pid {} serving {}",
        world.hub_pid().expect("a hub runs"),
        world.data.display()
    );

    println!("measuring idle channel memory ...");
    let idle_warn = idle_channel_memory(&mut world, "idle-warn", "warn");
    let idle_info = idle_channel_memory(&mut world, "idle-info", "info");

    println!("measuring {RT_ITERS} round trips ...");
    let round_trips = RoundTrips::measure(&world, &mut alpha, &mut beta);
    thread::sleep(SETTLE);
    let busy_channel = procfs::mem(alpha.pid());

    println!("measuring {START_ITERS} channel starts ...");
    let starts = Starts::measure(&world);

    println!("measuring {CLI_ITERS} runs of each relay command ...");
    let command_line = CommandLine::measure(&world, &mut beta);
    drop((alpha, beta, world));

    let fanouts: Vec<Fanout> = FANOUTS
        .iter()
        .map(|&(recipients, warmup, iters)| {
            println!("measuring broadcast fan-out to {recipients} peers ...");
            Fanout::measure(recipients, warmup, iters)
        })
        .collect();

    println!("measuring {THOUSAND_RAW} raw peers and a few channels on one hub ...");
    let thousand = Thousand::measure();

    println!("measuring federation ...");
    let federated = Federated::measure();

    let report = Report::build(&Results {
        floors,
        round_trips,
        starts,
        command_line,
        fanouts,
        idle_warn,
        idle_info,
        busy_channel,
        federated,
        hub_floor,
        thousand,
    });
    println!("\n{}", report.text(&machine));
    if let Some(path) = std::env::var_os("RELAY_BENCH_OUT") {
        fs::write(&path, report.markdown(&machine)).expect("write RELAY_BENCH_OUT");
        println!("markdown written to {}", Path::new(&path).display());
    }
    println!(
        "bench took {:.0} s; load average at the end {}",
        began.elapsed().as_secs_f64(),
        load_average()
    );
}

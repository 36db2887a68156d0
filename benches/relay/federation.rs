//! Federation: the same ask round trip between two sessions of one federated hub and between
//! sessions of two hubs, beside a raw NATS request and reply through the same server (a round
//! trip across hubs makes two: the ask and the reply); a broadcast across three hubs of twenty
//! sessions each; the memory of a federated hub. The server is a real `nats-server` on a loopback
//! port, as in the tests.

use futures_util::StreamExt;
use testkit::{NatsServer, World};

use crate::measure::{Fanout, RT_WARMUP, Samples, round_trip, spawn_fleet, wait_for_peers, world};

pub const FED_RT_ITERS: usize = 500;
pub const FED_NATS_ITERS: usize = 5_000;
/// Hosts of the broadcast, and sessions on each.
pub const FED_HOSTS: usize = 3;
pub const FED_SESSIONS_PER_HOST: usize = 20;
/// Broadcasts across the hosts, as (warm-up rounds, measured rounds).
pub const FED_BROADCASTS: (usize, usize) = (5, 50);

pub struct Federated {
    /// A request and its reply through the server, between two clients of it.
    pub nats: Samples,
    /// Ask round trip between two sessions of one federated hub.
    pub one_hub: Samples,
    /// Ask round trip between sessions of two hubs.
    pub across: Samples,
    /// A broadcast from a session of the first host to every session of all three; its memory
    /// figures are the first host's hub's.
    pub broadcast: Fanout,
}

/// Host `n` of the federation served by `nats`.
fn host(nats: &NatsServer, n: usize) -> World {
    world()
        .with_env("RELAY_NATS_URL", &nats.url())
        .with_env("RELAY_HOST", &format!("host-{n}"))
}

impl Federated {
    /// `None` when there is no `nats-server` to run (a line says so).
    pub fn measure() -> Option<Federated> {
        let nats = NatsServer::start("the federation bench")?;
        println!("measuring {FED_NATS_ITERS} raw NATS requests ...");
        let nats_floor = nats_round_trips(&nats.url());
        let mut hosts: Vec<World> = (0..FED_HOSTS).map(|n| host(&nats, n)).collect();
        let mut asker = hosts[0].channel("asker");
        let mut near = hosts[0].channel("near");
        let mut far = hosts[1].channel("far");
        wait_for_peers(&mut asker, 2);

        println!("measuring {FED_RT_ITERS} round trips on one federated hub and across two ...");
        let one_hub = Samples::collect(RT_WARMUP, FED_RT_ITERS, || {
            round_trip(&mut asker, &mut near)
        });
        let across = Samples::collect(RT_WARMUP, FED_RT_ITERS, || round_trip(&mut asker, &mut far));
        drop((near, far));

        let recipients = FED_HOSTS * FED_SESSIONS_PER_HOST;
        println!(
            "measuring broadcasts to {FED_HOSTS} hubs of {FED_SESSIONS_PER_HOST} sessions ..."
        );
        let mut fleet: Vec<_> = hosts
            .iter()
            .enumerate()
            .flat_map(|(n, world)| spawn_fleet(world, &format!("h{n}"), FED_SESSIONS_PER_HOST))
            .collect();
        wait_for_peers(&mut asker, recipients);
        let hub = hosts[0].hub_pid().expect("the first host's hub");
        let (warmup, iters) = FED_BROADCASTS;
        let broadcast = Fanout::broadcasts(hub, &mut asker, &mut fleet, warmup, iters);
        drop((fleet, asker));
        hosts.clear();
        Some(Federated {
            nats: nats_floor,
            one_hub,
            across,
            broadcast,
        })
    }
}

/// Round trips of a raw request and reply between two clients of the server at `url`, with
/// the crate the hub uses: the floor a round trip across hubs is made of (twice).
fn nats_round_trips(url: &str) -> Samples {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let responder = async_nats::connect(url)
            .await
            .expect("connect the responder");
        let requester = async_nats::connect(url)
            .await
            .expect("connect the requester");
        let mut requests = responder.subscribe("bench.echo").await.expect("subscribe");
        responder.flush().await.expect("flush");
        let echo = tokio::spawn(async move {
            while let Some(request) = requests.next().await {
                if let Some(reply) = request.reply {
                    let _ = responder.publish(reply, request.payload).await;
                }
            }
        });
        let payload = vec![b'x'; 128];
        let once = async || {
            let start = std::time::Instant::now();
            requester
                .request("bench.echo", payload.clone().into())
                .await
                .expect("an echo");
            start.elapsed()
        };
        // Until the server routes the responder's subscription, a request finds no responder;
        // no event says when, so the first request is retried, within a bound.
        let routed_by = std::time::Instant::now() + testkit::PROMPTLY;
        while let Err(e) = requester
            .request("bench.echo", payload.clone().into())
            .await
        {
            assert!(
                std::time::Instant::now() < routed_by,
                "no echo within {:?}: {e}",
                testkit::PROMPTLY
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        for _ in 0..RT_WARMUP {
            once().await;
        }
        let mut samples = Vec::with_capacity(FED_NATS_ITERS);
        for _ in 0..FED_NATS_ITERS {
            samples.push(once().await);
        }
        echo.abort();
        Samples(samples)
    })
}

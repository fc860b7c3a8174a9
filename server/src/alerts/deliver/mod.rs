//! Alert delivery: messages rendered per channel kind and queued in the outbox
//! (`alert_deliveries`) inside the transaction that decided to send them ([`enqueue`]), then
//! sent by one worker per cluster ([`Deliverer::run`], under the [`LEASE`] lease): one request
//! in flight per channel, oldest first, spaced per kind, 10 s timeout, no redirects. 2xx is
//! delivered; 429, 5xx, timeouts and connection errors are retried with exponential backoff
//! (honouring `Retry-After`) until about an hour after queueing, then given up; 410 disables
//! the channel; any other answer fails the delivery at once. Failures are never reported
//! through a channel: they show in the deliveries API and on `/metrics`.

pub mod channels;
pub mod guard;
pub mod render;
pub mod sign;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa::ToSchema;

use self::guard::{Guard, Refusal};
use crate::alerts::Message;
use crate::clock::{now, now_ms};
use crate::error::{Error, Result};
use crate::pki::Kek;
use crate::store::alert_channels::{self as stored_channels, ChannelRow};
use crate::store::alert_deliveries::{self as outbox, Attempt, DueRow, NewDelivery};
use crate::store::{Store, lease};

/// The lease whose holder sends alert deliveries and evaluates the rules (the evaluator runs
/// under it too, so what it queues wakes the worker in its own process at once).
pub const LEASE: &str = "alerts";
/// How long the lease lasts unless renewed.
pub const LEASE_TTL: Duration = Duration::from_secs(15);
const LEASE_RENEW: Duration = Duration::from_secs(5);

/// What a channel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// JSON signed per Standard Webhooks.
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// The Alertmanager webhook (version 4) body, e.g. for a receiver that speaks it.
    Alertmanager,
    /// Pushes to an Alertmanager's `/api/v2/alerts` (operators only).
    AlertmanagerApi,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 4] = [Self::Webhook, Self::Slack, Self::Alertmanager, Self::AlertmanagerApi];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Slack => "slack",
            Self::Alertmanager => "alertmanager",
            Self::AlertmanagerApi => "alertmanager_api",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The least time between two requests to one channel (Slack takes about one a second).
    pub fn spacing(self) -> Duration {
        match self {
            Self::Slack => Duration::from_secs(1),
            _ => Duration::from_millis(100),
        }
    }
}

/// Delivery timings. Not user configuration: the defaults are the documented behaviour, and
/// tests shorten them through `Config::alerts.delivery`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuning {
    /// The first retry's delay; each later one doubles, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// A delivery still failing this long after it was queued is given up.
    pub give_up_after: Duration,
    /// Per request, connecting included.
    pub timeout: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(600),
            give_up_after: Duration::from_secs(3600),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Deliveries by channel kind and outcome, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters(Mutex<BTreeMap<(&'static str, &'static str), u64>>);

impl Counters {
    fn add(&self, kind: ChannelKind, outcome: &'static str) {
        *self.0.lock().expect("delivery counters").entry((kind.as_str(), outcome)).or_default() += 1;
    }

    /// (kind, outcome, count), sorted.
    pub fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
        self.0.lock().expect("delivery counters").iter().map(|((k, o), n)| (*k, *o, *n)).collect()
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Try again later (429, 5xx, 408, timeouts, connection errors, unresolvable hosts).
    Retry,
    /// The receiver is gone for good (410): disable the channel.
    Gone,
    /// Refused for good (other 4xx, a redirect, a refused destination).
    Failed,
}

/// The verdict on an answer with `status`, or on no answer (`None`: the request did not get
/// one, and `transient` says whether trying again may help).
pub fn verdict(status: Option<u16>, transient: bool) -> Verdict {
    match status {
        None if transient => Verdict::Retry,
        None => Verdict::Failed,
        Some(200..=299) => Verdict::Delivered,
        Some(410) => Verdict::Gone,
        Some(408 | 429 | 500..=599) => Verdict::Retry,
        Some(_) => Verdict::Failed,
    }
}

/// The delay before retry `attempts` (1 for the first retry): the base doubled per earlier
/// retry, at most `max`; a `Retry-After` longer than that wins, within `max`.
pub fn backoff(tuning: &Tuning, attempts: i64, retry_after: Option<Duration>) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    let delay = tuning.backoff_base.saturating_mul(2u32.saturating_pow(doublings)).min(tuning.backoff_max);
    retry_after.map_or(delay, |r| r.min(tuning.backoff_max).max(delay))
}

/// A `Retry-After` value: delay seconds, or an HTTP date (IMF-fixdate) from `now` (unix seconds).
pub fn parse_retry_after(value: &str, now: i64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(value, format).ok()?.assume_utc().unix_timestamp();
    Some(Duration::from_secs(u64::try_from(at - now).unwrap_or(0)))
}

/// The result of one request to a channel.
#[derive(Debug, Clone)]
pub struct Sent {
    pub status: Option<u16>,
    /// For an unanswered request: whether trying again may help.
    pub transient: bool,
    pub retry_after: Option<Duration>,
    pub error: String,
    pub latency_ms: i64,
}

/// The answer of `POST …/alert-channels/{ch}/test`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TestOutcome {
    /// The receiver's HTTP status; null when no answer came.
    pub status: Option<u16>,
    pub latency_ms: i64,
    /// Why the delivery failed; null when the receiver answered 2xx.
    pub error: Option<String>,
}

/// Queues `message` for every enabled channel of `channels`, inside the caller's transaction:
/// one outbox row per channel, its body rendered now, with a fresh `webhook-id`. After the
/// commit, call `store.signals().alert_deliveries_queued()` to wake the worker. Returns the
/// rows' ids.
pub async fn enqueue(
    conn: &mut AnyConnection,
    channels: &[ChannelRow],
    message: &Message,
    now_ms: i64,
) -> Result<Vec<i64>> {
    let mut ids = Vec::new();
    for channel in channels.iter().filter(|c| c.enabled) {
        let Some(kind) = ChannelKind::parse(&channel.kind) else { continue };
        let rendered = render::render(kind, message, &channel.name);
        let webhook_id = sign::message_id();
        let row = NewDelivery {
            channel_id: channel.id,
            tenant_id: channel.tenant_id,
            rule_id: (!message.test).then_some(message.rule_id),
            webhook_id: &webhook_id,
            event_type: rendered.event_type,
            body: &rendered.body,
        };
        ids.push(outbox::insert(conn, &row, now_ms).await?);
    }
    Ok(ids)
}

/// Sends deliveries: what the API's channel test and the worker share.
pub struct Deliverer {
    store: Store,
    kek: Arc<Kek>,
    guard: Guard,
    tuning: Tuning,
    counters: Arc<Counters>,
    /// A request finished: its channel may take the next delivery.
    finished: Notify,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer").field("guard", &self.guard).field("tuning", &self.tuning).finish()
    }
}

impl Deliverer {
    pub fn new(store: Store, kek: Arc<Kek>, guard: Guard, tuning: Tuning, counters: Arc<Counters>) -> Self {
        Self { store, kek, guard, tuning, counters, finished: Notify::new() }
    }

    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    pub(crate) fn kek(&self) -> &Kek {
        &self.kek
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// Opens a channel's URL.
    pub(crate) fn url_of(&self, channel: &ChannelRow) -> Result<String> {
        let plain = self.kek.open(&channels::url_context(channel.id), &channel.url_sealed)?;
        String::from_utf8(plain)
            .map_err(|_| Error::Internal(anyhow::anyhow!("channel {} URL is not UTF-8", channel.id)))
    }

    /// The secrets that sign for `channel` now: the current one, and the previous one until
    /// its rotation ends.
    fn secrets_of(&self, channel: &ChannelRow, now: i64) -> Result<Vec<String>> {
        let mut secrets = Vec::new();
        let open = |context: String, sealed: &[u8]| -> Result<String> {
            String::from_utf8(self.kek.open(&context, sealed)?)
                .map_err(|_| Error::Internal(anyhow::anyhow!("channel {} secret is not UTF-8", channel.id)))
        };
        if let Some(sealed) = &channel.secret_sealed {
            secrets.push(open(channels::secret_context(channel.id), sealed)?);
        }
        if let (Some(sealed), Some(until)) = (&channel.previous_secret_sealed, channel.previous_until)
            && until > now
        {
            secrets.push(open(channels::previous_secret_context(channel.id), sealed)?);
        }
        Ok(secrets)
    }

    /// One request of `body` to `channel`, the destination checked again (DNS may have changed
    /// since the channel was saved) and pinned.
    pub async fn send(&self, channel: &ChannelRow, webhook_id: &str, body: &str) -> Sent {
        let started = Instant::now();
        let unanswered = |transient: bool, error: String| Sent {
            status: None,
            transient,
            retry_after: None,
            error,
            latency_ms: started.elapsed().as_millis() as i64,
        };
        let url = match self.url_of(channel) {
            Ok(url) => url,
            Err(e) => return unanswered(false, format!("cannot open the channel's URL: {}", e.public_message())),
        };
        let dest = match self.guard.resolve(&url).await {
            Ok(dest) => dest,
            Err(Refusal::Unresolved(e)) => return unanswered(true, e),
            Err(Refusal::Refused(e)) => return unanswered(false, format!("destination refused: {e}")),
        };
        let client = match Guard::client(&dest, self.tuning.timeout) {
            Ok(client) => client,
            Err(e) => return unanswered(true, e),
        };
        let mut request = client.post(dest.url.clone()).header("content-type", "application/json");
        if channel.kind == ChannelKind::Webhook.as_str() {
            let timestamp = now();
            let secrets = match self.secrets_of(channel, timestamp) {
                Ok(secrets) => secrets,
                Err(e) => return unanswered(false, format!("cannot open the signing secret: {}", e.public_message())),
            };
            let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
            let signature = match sign::header(&refs, webhook_id, timestamp, body.as_bytes()) {
                Ok(signature) => signature,
                Err(e) => return unanswered(false, e),
            };
            request = request
                .header("webhook-id", webhook_id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature);
        }
        let started = Instant::now();
        match request.body(body.to_owned()).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, now()));
                let latency_ms = started.elapsed().as_millis() as i64;
                let error = match verdict(Some(status), false) {
                    Verdict::Delivered => String::new(),
                    _ if (300..400).contains(&status) => {
                        format!("the receiver answered {status} (redirects are not followed)")
                    }
                    _ => format!("the receiver answered {status}"),
                };
                Sent { status: Some(status), transient: false, retry_after, error, latency_ms }
            }
            Err(e) if e.is_timeout() => {
                unanswered(true, format!("no answer within {} s", self.tuning.timeout.as_secs_f64()))
            }
            Err(e) if e.is_connect() => unanswered(true, format!("cannot connect: {}", root_cause(&e))),
            Err(e) => unanswered(true, format!("request failed: {}", root_cause(&e))),
        }
    }

    /// Sends `message` to `channel` at once (not through the outbox) and records the outcome as
    /// a finished delivery, so it shows among the channel's deliveries.
    pub async fn send_test(&self, channel: &ChannelRow, message: &Message) -> Result<TestOutcome> {
        let kind = ChannelKind::parse(&channel.kind)
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("channel {} has kind {:?}", channel.id, channel.kind)))?;
        let rendered = render::render(kind, message, &channel.name);
        let webhook_id = sign::message_id();
        let sent = self.send(channel, &webhook_id, &rendered.body).await;
        let delivered = verdict(sent.status, sent.transient) == Verdict::Delivered;
        self.counters.add(kind, if delivered { "delivered" } else { "failed" });
        let row = NewDelivery {
            channel_id: channel.id,
            tenant_id: channel.tenant_id,
            rule_id: None,
            webhook_id: &webhook_id,
            event_type: rendered.event_type,
            body: &rendered.body,
        };
        let attempt =
            Attempt { status: sent.status, error: sent.error.clone(), latency_ms: sent.latency_ms, at_ms: now_ms() };
        outbox::insert_finished(&self.store, &row, if delivered { "delivered" } else { "failed" }, &attempt).await?;
        Ok(TestOutcome { status: sent.status, latency_ms: sent.latency_ms, error: (!delivered).then_some(sent.error) })
    }

    /// Sends one due delivery and records what came of it.
    async fn deliver(&self, row: DueRow, last_sent: &Mutex<HashMap<i64, Instant>>) -> Result<()> {
        if !outbox::still_due(&self.store, row.id, row.attempts, now_ms()).await? {
            return Ok(());
        }
        let Some(channel) = stored_channels::by_id(&self.store, row.channel_id).await? else { return Ok(()) };
        let Some(kind) = ChannelKind::parse(&channel.kind) else { return Ok(()) };
        let at = |sent: &Sent| Attempt {
            status: sent.status,
            error: sent.error.clone(),
            latency_ms: sent.latency_ms,
            at_ms: now_ms(),
        };
        if !channel.enabled {
            let reason =
                if channel.disabled_reason.is_empty() { "the channel is disabled" } else { &channel.disabled_reason };
            let attempt =
                Attempt { status: None, error: format!("not sent: {reason}"), latency_ms: 0, at_ms: now_ms() };
            outbox::finish(&self.store, row.id, "failed", &attempt).await?;
            self.counters.add(kind, "failed");
            return Ok(());
        }
        let earliest = last_sent.lock().expect("spacing").get(&channel.id).map(|t| *t + kind.spacing());
        if let Some(earliest) = earliest {
            tokio::time::sleep_until(earliest.into()).await;
        }
        let sent = self.send(&channel, &row.webhook_id, &row.body).await;
        last_sent.lock().expect("spacing").insert(channel.id, Instant::now());
        match verdict(sent.status, sent.transient) {
            Verdict::Delivered => {
                outbox::finish(&self.store, row.id, "delivered", &at(&sent)).await?;
                self.counters.add(kind, "delivered");
            }
            Verdict::Failed => {
                tracing::warn!(channel = channel.id, delivery = row.id, error = sent.error, "alert delivery failed");
                outbox::finish(&self.store, row.id, "failed", &at(&sent)).await?;
                self.counters.add(kind, "failed");
            }
            Verdict::Gone => {
                let reason = format!("the receiver answered 410 Gone on {}", crate::clock::rfc3339(now()));
                tracing::warn!(channel = channel.id, "alert channel disabled: {reason}");
                outbox::finish(&self.store, row.id, "failed", &at(&sent)).await?;
                stored_channels::disable(&self.store, channel.id, &reason, now_ms()).await?;
                self.counters.add(kind, "disabled");
            }
            Verdict::Retry => {
                let now = now_ms();
                let deadline = row.created_at + self.tuning.give_up_after.as_millis() as i64;
                if now >= deadline {
                    tracing::warn!(
                        channel = channel.id,
                        delivery = row.id,
                        error = sent.error,
                        "alert delivery given up"
                    );
                    outbox::finish(&self.store, row.id, "gave_up", &at(&sent)).await?;
                    self.counters.add(kind, "gave_up");
                } else {
                    let delay = backoff(&self.tuning, row.attempts + 1, sent.retry_after);
                    let next = (now + delay.as_millis() as i64).min(deadline);
                    outbox::retry_at(&self.store, row.id, next, &at(&sent)).await?;
                    self.counters.add(kind, "retried");
                }
            }
        }
        Ok(())
    }

    /// The delivery worker: runs while this replica (`holder`) holds the [`LEASE`] lease, until
    /// cancelled. Woken when deliveries are queued, when a request ends, and when the next
    /// retry falls due (at least every few seconds, for what other replicas queued).
    pub async fn run(self: Arc<Self>, holder: String, cancel: CancellationToken) {
        let busy: Arc<Mutex<HashSet<i64>>> = Arc::default();
        let last_sent: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
        let requests = TaskTracker::new();
        let mut leading: Option<(i64, Instant)> = None;
        loop {
            // The lease is taken only while deliveries are pending: an idle worker writes nothing
            // (and a lapsed lease lets another replica take over when work appears there).
            let next_due = match outbox::next_due_at(&self.store).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(error = %e, "reading pending alert deliveries failed");
                    None
                }
            };
            let renew_due = leading.is_none_or(|(_, renewed)| renewed.elapsed() >= LEASE_RENEW);
            if next_due.is_none() && renew_due {
                leading = None;
            } else if renew_due {
                leading = match lease::acquire(&self.store, LEASE, &holder, LEASE_TTL.as_millis() as i64).await {
                    Ok(Some(epoch)) => {
                        if leading.is_none_or(|(e, _)| e != epoch) {
                            tracing::info!(epoch, holder, "took the alerts lease");
                        }
                        Some((epoch, Instant::now()))
                    }
                    Ok(None) => None,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not renew the alerts lease");
                        None
                    }
                };
            }
            let mut wait = LEASE_RENEW;
            if leading.is_some() {
                match outbox::due(&self.store, now_ms()).await {
                    Ok(rows) => {
                        for row in rows {
                            if !busy.lock().expect("busy channels").insert(row.channel_id) {
                                continue;
                            }
                            let (me, busy, last_sent, cancel) =
                                (self.clone(), busy.clone(), last_sent.clone(), cancel.clone());
                            requests.spawn(async move {
                                let channel = row.channel_id;
                                tokio::select! {
                                    _ = cancel.cancelled() => {}
                                    done = me.deliver(row, &last_sent) => {
                                        if let Err(e) = done {
                                            tracing::warn!(error = %e, channel, "recording an alert delivery failed");
                                        }
                                    }
                                }
                                busy.lock().expect("busy channels").remove(&channel);
                                me.finished.notify_one();
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "reading due alert deliveries failed"),
                }
                // What is due now was just started or waits for its channel's request to finish
                // (which wakes the loop); only a later retry needs the timer.
                if let Some(at) = next_due.filter(|at| *at > now_ms()) {
                    wait = wait.min(Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)));
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.store.signals().alert_deliveries_notified() => {}
                _ = self.finished.notified() => {}
                _ = tokio::time::sleep(wait.max(Duration::from_millis(10))) => {}
            }
        }
        requests.close();
        requests.wait().await;
        if leading.is_some()
            && let Err(e) = lease::release(&self.store, LEASE, &holder).await
        {
            tracing::warn!(error = %e, "could not release the alerts lease");
        }
        tracing::info!("alert delivery stopped");
    }
}

/// The innermost cause of a request error (reqwest's own message names only the URL).
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_status() {
        assert_eq!(verdict(Some(200), false), Verdict::Delivered);
        assert_eq!(verdict(Some(204), false), Verdict::Delivered);
        for retry in [429, 500, 502, 503, 408] {
            assert_eq!(verdict(Some(retry), false), Verdict::Retry, "{retry}");
        }
        assert_eq!(verdict(Some(410), false), Verdict::Gone);
        for failed in [301, 302, 307, 400, 401, 403, 404, 422] {
            assert_eq!(verdict(Some(failed), false), Verdict::Failed, "{failed}");
        }
        assert_eq!(verdict(None, true), Verdict::Retry);
        assert_eq!(verdict(None, false), Verdict::Failed);
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_honours_retry_after() {
        let t = Tuning::default();
        let secs = |n| backoff(&t, n, None).as_secs();
        assert_eq!([secs(1), secs(2), secs(3), secs(4)], [5, 10, 20, 40]);
        assert_eq!(secs(8), 600);
        assert_eq!(secs(1000), 600);
        assert_eq!(backoff(&t, 1, Some(Duration::from_secs(30))).as_secs(), 30);
        assert_eq!(backoff(&t, 3, Some(Duration::from_secs(1))).as_secs(), 20);
        assert_eq!(backoff(&t, 1, Some(Duration::from_secs(7200))).as_secs(), 600);
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        assert_eq!(parse_retry_after("120", 0), Some(Duration::from_secs(120)));
        // 1994-11-06T08:49:37Z is 784111777.
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_770), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_800), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", 0), None);
    }

    #[test]
    fn kinds_round_trip_and_slack_is_spaced_by_a_second() {
        for kind in ChannelKind::ALL {
            assert_eq!(ChannelKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        assert_eq!(ChannelKind::parse("email"), None);
        assert_eq!(ChannelKind::Slack.spacing(), Duration::from_secs(1));
        assert!(ChannelKind::Webhook.spacing() < Duration::from_secs(1));
    }
}

//! The bounded queue between a connection's `serve` loop and its writer.
//!
//! Both ends are polled by the connection's one task, so the queue needs no
//! more than a mutex that is never contended and a waker per end. It
//! replaces a general-purpose channel that allocated a node per frame; here
//! frames sit in a ring buffer whose room is only taken while frames wait,
//! and the writer takes everything waiting at once.

use chatcore::protocol::ServerFrame;
use futures_util::Sink;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// The writer has gone: nothing more can be sent on this connection.
#[derive(Debug)]
pub(crate) struct WriterGone;

impl std::fmt::Display for WriterGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the connection's writer has stopped")
    }
}

struct State {
    frames: VecDeque<ServerFrame>,
    capacity: usize,
    /// The sending side closed (or was dropped).
    closed: bool,
    /// The receiving side was dropped.
    gone: bool,
    rx_waker: Option<Waker>,
    tx_waker: Option<Waker>,
}

type Shared = Arc<Mutex<State>>;

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// Stores `waker` unless the one already stored would wake the same task.
fn park(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

/// A queue holding up to `capacity` frames.
pub(crate) fn queue(capacity: usize) -> (FrameSender, FrameReceiver) {
    let shared = Arc::new(Mutex::new(State {
        frames: VecDeque::new(),
        capacity: capacity.max(1),
        closed: false,
        gone: false,
        rx_waker: None,
        tx_waker: None,
    }));
    (FrameSender(shared.clone()), FrameReceiver(shared))
}

/// `serve`'s end: a `Sink` of frames. Flushing is the writer's business, so
/// `poll_flush` returns at once.
pub(crate) struct FrameSender(Shared);

impl Sink<ServerFrame> for FrameSender {
    type Error = WriterGone;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WriterGone>> {
        let mut s = lock(&self.0);
        if s.gone {
            Poll::Ready(Err(WriterGone))
        } else if s.frames.len() < s.capacity {
            Poll::Ready(Ok(()))
        } else {
            park(&mut s.tx_waker, cx.waker());
            Poll::Pending
        }
    }

    fn start_send(self: Pin<&mut Self>, frame: ServerFrame) -> Result<(), WriterGone> {
        let mut s = lock(&self.0);
        if s.gone {
            return Err(WriterGone);
        }
        s.frames.push_back(frame);
        if let Some(w) = s.rx_waker.take() {
            w.wake();
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WriterGone>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WriterGone>> {
        close(&self.0);
        Poll::Ready(Ok(()))
    }
}

fn close(shared: &Shared) {
    let mut s = lock(shared);
    s.closed = true;
    if let Some(w) = s.rx_waker.take() {
        w.wake();
    }
}

impl Drop for FrameSender {
    fn drop(&mut self) {
        close(&self.0);
    }
}

/// The writer's end.
pub(crate) struct FrameReceiver(Shared);

impl FrameReceiver {
    /// Moves up to `max` waiting frames into `out`. Ready with `false` once
    /// the sender has closed and every frame has been taken.
    pub(crate) fn poll_take(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<ServerFrame>,
        max: usize,
    ) -> Poll<bool> {
        let mut s = lock(&self.0);
        if s.frames.is_empty() {
            if s.closed {
                return Poll::Ready(false);
            }
            park(&mut s.rx_waker, cx.waker());
            return Poll::Pending;
        }
        let n = s.frames.len().min(max);
        out.extend(s.frames.drain(..n));
        if s.frames.is_empty() {
            // Idle connections keep no room for frames.
            s.frames = VecDeque::new();
        }
        if let Some(w) = s.tx_waker.take() {
            w.wake();
        }
        Poll::Ready(true)
    }
}

impl Drop for FrameReceiver {
    fn drop(&mut self) {
        let mut s = lock(&self.0);
        s.gone = true;
        s.frames.clear();
        if let Some(w) = s.tx_waker.take() {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::SinkExt;
    use std::future::poll_fn;

    fn pong(id: u32) -> ServerFrame {
        ServerFrame::Pong { id }
    }

    async fn take(rx: &mut FrameReceiver, max: usize) -> (bool, Vec<ServerFrame>) {
        let mut out = Vec::new();
        let open = poll_fn(|cx| rx.poll_take(cx, &mut out, max)).await;
        (open, out)
    }

    #[tokio::test]
    async fn delivers_in_order_in_batches_and_ends_after_close() {
        let (mut tx, mut rx) = queue(8);
        for id in 0..5 {
            tx.send(pong(id)).await.expect("sent");
        }
        assert_eq!(
            take(&mut rx, 3).await,
            (true, vec![pong(0), pong(1), pong(2)])
        );
        tx.close().await.expect("closed");
        // What was queued before the close still arrives, then the end.
        assert_eq!(take(&mut rx, 64).await, (true, vec![pong(3), pong(4)]));
        assert_eq!(take(&mut rx, 64).await, (false, vec![]));
    }

    #[tokio::test]
    async fn a_full_queue_waits_for_the_writer() {
        let (mut tx, mut rx) = queue(2);
        tx.send(pong(1)).await.expect("sent");
        tx.send(pong(2)).await.expect("sent");
        let blocked = tokio::spawn(async move {
            tx.send(pong(3)).await.expect("sent after room was made");
            tx
        });
        tokio::task::yield_now().await;
        assert!(!blocked.is_finished(), "a third frame must wait for room");
        assert_eq!(take(&mut rx, 1).await.1, vec![pong(1)]);
        let _tx = blocked.await.expect("sender task");
        assert_eq!(take(&mut rx, 64).await.1, vec![pong(2), pong(3)]);
    }

    #[tokio::test]
    async fn sending_after_the_writer_is_gone_fails() {
        let (mut tx, rx) = queue(2);
        drop(rx);
        assert!(tx.send(pong(1)).await.is_err());
    }

    #[tokio::test]
    async fn dropping_the_sender_ends_the_stream() {
        let (tx, mut rx) = queue(2);
        drop(tx);
        assert_eq!(take(&mut rx, 64).await, (false, vec![]));
    }
}

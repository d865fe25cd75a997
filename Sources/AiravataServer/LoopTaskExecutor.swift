import NIOCore

/// Runs a task's jobs on one NIO event loop instead of Swift's cooperative pool.
///
/// A connection's admission is async (token, limiter, session), started from its loop and
/// answered on it. As a plain task every step hopped threads: loop → pool to start, Redis's
/// loop → pool at each reply, pool → loop with the answer, each a wake-up; on a busy node the
/// context switches cost more than the work (a connect storm's profile). With this executor
/// the task starts on the connection's loop and its awaits resume there.
final class LoopTaskExecutor: TaskExecutor {
    private static let executors = PerLoop<ObjectIdentifier, LoopTaskExecutor>()

    let loop: any EventLoop

    private init(loop: any EventLoop) {
        self.loop = loop
    }

    static func on(_ loop: any EventLoop) -> LoopTaskExecutor {
        executors.value(for: ObjectIdentifier(loop)) { LoopTaskExecutor(loop: loop) }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

extension EventLoop {
    /// `makeFutureWithTask`, with the task's jobs run on this loop (see `LoopTaskExecutor`).
    func makeFutureWithLoopTask<Value: Sendable>(
        _ body: @escaping @Sendable () async -> Value
    ) -> EventLoopFuture<Value> {
        let promise = makePromise(of: Value.self)
        Task(executorPreference: LoopTaskExecutor.on(self)) {
            promise.succeed(await body())
        }
        return promise.futureResult
    }
}

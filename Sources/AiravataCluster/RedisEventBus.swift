package import AiravataCore
package import AiravataRedis
package import Logging
package import NIOCore
import NIOPosix
import Synchronization

/// The cluster's event path (design §4): one Lua call appends a batch to the replay stream
/// and publishes it; every node reads the one events channel through its subscriber
/// connection and routes to its local clients. After the subscriber reconnects, the node
/// reads what it missed from the stream, so a Redis blip loses no accepted event.
package final class RedisEventBus: EventBus {
    let client: RedisClient
    let subscriber: RedisSubscriber
    let keys: RedisKeys
    let configuration: ClusterConfiguration
    let instance: String
    let logger: Logger
    /// Read and written by this file and its extensions (`RedisEventBus+*.swift`).
    let state = Mutex(State())
    /// The newest bus format every subscribed node reads (automatic format): 0 until the
    /// first check (treated as 1), else 1, 2 or 3. Every publish reads it, from every event
    /// loop, so it is an atomic rather than a field of `state`: the lock was contended
    /// (0.6 % of an ingesting node in futex waits, 1:1 profile s9-prof-11).
    let clusterFormat = Atomic<UInt8>(0)
    /// Requests for a gap fill, served by `fillLoop` (RedisEventBus+GapFill.swift).
    let fillRequests: AsyncStream<Void>.Continuation
    let fillStream: AsyncStream<Void>
    private let rejections = LogThrottle(interval: .seconds(10))
    /// Warnings about the loss records (`judgeReportedLoss`), which are read every heartbeat.
    let lossRecordWarnings = LogThrottle(interval: .seconds(60))
    private let blockQueue: PublishQueue
    private let publishQueue: PublishQueue
    private let legacyPublishQueue: PublishQueue
    /// The same for requests whose events carry producer ids (`ClusterScripts.publishOnce`).
    private let publishOnceQueue: PublishQueue
    private let legacyPublishOnceQueue: PublishQueue

    /// Most live messages held while a gap fill runs (it may keep failing while Redis
    /// commands are down but pub/sub is up). Past it the node stops holding and reads the log
    /// again once the fill succeeds, so nothing is lost that the log still holds.
    package static let maxHeldMessages = 10_000

    /// Most bytes of live messages held while a gap fill runs: events may be about 1 MB each,
    /// so the count alone would allow gigabytes. Past it, the same as past `maxHeldMessages`.
    package static let maxHeldBytes = 64 << 20

    /// How far ahead of both the node's clock and its newest delivered cursor a live message's
    /// cursor may be before it is checked against the log. Redis assigns cursors from its
    /// clock, so a real one is not far ahead; an unchecked forged one would make the node drop
    /// every real event below it. A forged cursor within the tolerance can still cost this
    /// node's clients the real events of at most that interval: the price of not reading the
    /// log for every message.
    package static let futureCursorToleranceMillis: UInt64 = 1_000

    /// The longest cursor on the events channel: two 20-digit numbers and a dash.
    static let maxCursorLength = 41

    /// How many recent positions a node remembers (`State.delivered`, 16 bytes each): enough
    /// for the seconds between a failover and another node's report of what the log lost, at
    /// tens of thousands of events per second.
    static let rememberedPositions = 65_536

    /// - Parameter publisher: the connection the publish scripts go through; with durable
    ///   ingestion a connection of its own, since `WAIT` holds the connection it is sent on.
    /// - Parameter subscriberLoop: the loop that reads the events channel.
    package init(
        client: RedisClient, publisher: RedisClient? = nil, configuration: ClusterConfiguration, instance: String,
        subscriberLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next(), logger: Logger
    ) {
        self.client = client
        self.configuration = configuration
        self.keys = RedisKeys(prefix: configuration.keyPrefix)
        self.instance = instance
        self.logger = logger
        (fillStream, fillRequests) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let keys = self.keys
        let replayLength = configuration.replayLength
        let publisher = publisher ?? client
        let durable = Self.durable(configuration.durability, on: publisher, logger: logger)
        /// One publish script call per batch: the stream, the channel of its format, the counter.
        func queue(_ script: RedisScript, channel: String) -> PublishQueue {
            PublishQueue(loop: publisher.eventLoop) { payloads in
                durable(
                    publisher.submit(
                        script,
                        keys: [
                            RedisArgument(keys.eventStream), RedisArgument(channel),
                            RedisArgument(keys.acceptedCounter),
                        ],
                        arguments: [RedisArgument(replayLength)] + payloads.map { RedisArgument(bytes: $0) }))
            }
        }
        blockQueue = PublishQueue(loop: publisher.eventLoop, cursors: ReplayLogEntry.blockCursors) { payloads in
            durable(
                publisher.submit(
                    ClusterScripts.publishBlock,
                    keys: [
                        RedisArgument(keys.eventStream), RedisArgument(keys.eventBlockChannel),
                        RedisArgument(keys.acceptedCounter), RedisArgument(keys.logBlocks),
                        RedisArgument(keys.logBlockEvents),
                    ],
                    arguments: [
                        RedisArgument(replayLength), RedisArgument(payloads.count),
                        RedisArgument(bytes: BusMessage.blockBody(payloads)),
                    ]))
        }
        publishQueue = queue(ClusterScripts.publishBatch, channel: keys.eventBatchChannel)
        legacyPublishQueue = queue(ClusterScripts.publish, channel: keys.eventChannel)
        let deduplication = configuration.deduplication
        /// Each event is two arguments: its producer id ('' for none) and its payload.
        func onceQueue(format: String, channel: String) -> PublishQueue {
            PublishQueue(loop: publisher.eventLoop, argumentsPerEvent: 2) { arguments in
                durable(
                    publisher.submit(
                        ClusterScripts.publishOnce,
                        keys: [
                            RedisArgument(keys.eventStream), RedisArgument(channel),
                            RedisArgument(keys.acceptedCounter),
                            RedisArgument(keys.producerIDs), RedisArgument(keys.producerIDCursors),
                        ],
                        arguments: [
                            RedisArgument(replayLength), RedisArgument(format),
                            RedisArgument(Int(deduplication.windowMillis)), RedisArgument(deduplication.capacity),
                        ] + arguments.map { RedisArgument(bytes: $0) }))
            }
        }
        publishOnceQueue = onceQueue(format: "2", channel: keys.eventBatchChannel)
        legacyPublishOnceQueue = onceQueue(format: "1", channel: keys.eventChannel)
        let receiver = Receiver()
        subscriber = RedisSubscriber(
            configuration: configuration.redis,
            eventLoop: subscriberLoop,
            logger: logger,
            onMessage: { channel, payload in receiver.bus?.received(channel: channel, payload: payload) },
            onResubscribed: { receiver.bus?.resubscribed() }
        )
        receiver.bus = self
    }

    /// Lets the subscriber's callbacks reach the bus without a retain cycle.
    private final class Receiver: @unchecked Sendable {  // set once, before the subscriber runs
        weak var bus: RedisEventBus?
    }

    // MARK: Publishing

    package func publish(_ events: [GatewayEvent]) async throws -> [String] {
        switch writtenFormat {
        case .v3: try await blockQueue.publish(events.map(EventWireFormat.encodeV2))
        case .v2: try await publishQueue.publish(events.map(EventWireFormat.encodeV2))
        default: try await legacyPublishQueue.publish(events.map(EventWireFormat.encodeV1))
        }
    }

    package func publish(_ events: [GatewayEvent], on loop: any EventLoop) -> EventLoopFuture<[String]> {
        let promise = loop.makePromise(of: [String].self)
        publish(events, on: loop) { promise.completeWith($0) }
        return promise.futureResult
    }

    package func publish(
        _ events: [GatewayEvent], on loop: any EventLoop,
        then complete: @escaping @Sendable (Result<[String], any Error>) -> Void
    ) {
        switch writtenFormat {
        case .v3: blockQueue.publish(events.map(EventWireFormat.encodeV2), on: loop, then: complete)
        case .v2: publishQueue.publish(events.map(EventWireFormat.encodeV2), on: loop, then: complete)
        default: legacyPublishQueue.publish(events.map(EventWireFormat.encodeV1), on: loop, then: complete)
        }
    }

    package func publishOnce(_ events: [GatewayEvent], producerIDs: [String?]) async throws -> [Publication] {
        let loop = client.eventLoop
        return try await publishOnce(events, producerIDs: producerIDs, on: loop).get()
    }

    package func publishOnce(_ events: [GatewayEvent], producerIDs: [String?], on loop: any EventLoop)
        -> EventLoopFuture<[Publication]>
    {
        guard configuration.deduplication.isEnabled else {
            return publish(events, on: loop).map { $0.map { Publication(cursor: $0) } }
        }
        // v3 nodes write these as v2: which ids are new is decided inside the script, so the
        // block the node would send is not the one to append.
        let v2 = writtenFormat >= .v2
        var arguments: [[UInt8]] = []
        arguments.reserveCapacity(events.count * 2)
        for (event, producerID) in zip(events, producerIDs) {
            arguments.append(Array((producerID ?? "").utf8))
            arguments.append(v2 ? EventWireFormat.encodeV2(event) : EventWireFormat.encodeV1(event))
        }
        let queue = v2 ? publishOnceQueue : legacyPublishOnceQueue
        return queue.publish(arguments, on: loop).map { answers in
            answers.map { answer in
                answer.hasPrefix("=")
                    ? Publication(cursor: String(answer.dropFirst()), duplicate: true) : Publication(cursor: answer)
            }
        }
    }

    /// The form this node writes now (never `.automatic`).
    package var writtenFormat: BusFormat {
        switch configuration.busFormat {
        case .automatic:
            switch clusterFormat.load(ordering: .relaxed) {
            case 3: .v3
            case 2: .v2
            default: .v1
            }
        case let pinned: pinned
        }
    }

    // MARK: Receiving

    package func run(sink: @escaping @Sendable (DeliveredEvent) -> Void) async throws {
        state.withLock { $0.sink = sink }
        // Start from the log's end, so that even the first subscription fills what was
        // published between now and the moment it is confirmed. Without that position a
        // subscriber that drops before the first event arrives would come back with nothing
        // to fill from, and the events published while it was away would be lost to this
        // node: so it subscribes only once the tip is read.
        guard await readStartingPosition() else { return }
        let startedMillis = UInt64(max(WallClock.nowMicros() / 1000, 0))
        state.withLock { $0.startedAt = EventCursor(milliseconds: startedMillis, sequence: 0) }
        await adoptRecordedLosses()
        subscriber.subscribe(keys.eventChannel)
        subscriber.subscribe(keys.eventBatchChannel)
        subscriber.subscribe(keys.eventBlockChannel)
        subscriber.subscribe(keys.heartbeatChannel(instance: instance))
        await withDiscardingTaskGroup { group in
            group.addTask { await self.subscriber.run() }
            group.addTask { await self.fillLoop() }
            group.addTask { await self.heartbeatLoop() }
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(3600))
            }
            group.cancelAll()
        }
    }

    /// Reads the log's tip into the node's position, retrying until Redis answers; false if
    /// cancelled first.
    private func readStartingPosition() async -> Bool {
        var backoff = Duration.milliseconds(50)
        var failures = 0
        while !Task.isCancelled {
            do {
                try await startFromTip()
                state.withLock { $0.tipError = nil }
                return true
            } catch {
                failures += 1
                state.withLock { $0.tipError = "\(error)" }
                // The command connection is usually still connecting on the first tries.
                if failures == 10 || failures % 30 == 0 {
                    logger.warning(
                        "cannot read the replay log's newest entry; the node subscribes to the events once it can",
                        metadata: ["error": "\(error)", "attempts": "\(failures)"])
                }
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(1))
            }
        }
        return false
    }

    private func received(channel: String, payload: ByteBuffer) {
        if channel == keys.eventBatchChannel {
            guard let records = BusMessage.records(in: payload) else {
                reject("malformed message on the v2 events channel", payload)
                return
            }
            for (cursor, body) in records { accept(cursor, entry: cursor, body) }
        } else if channel == keys.eventBlockChannel {
            receivedBlockPart(payload)
        } else if channel == keys.eventChannel {
            let view = payload.readableBytesView
            guard let newline = view.prefix(Self.maxCursorLength + 1).firstIndex(of: UInt8(ascii: "\n")),
                let cursor = EventCursor(bytes: view[view.startIndex..<newline]),
                let body = payload.getSlice(
                    at: payload.readerIndex + (newline - view.startIndex) + 1,
                    length: view.endIndex - newline - 1)
            else {
                reject("malformed message on the events channel", payload)
                return
            }
            accept(cursor, entry: cursor, body)
        } else {
            let now = NIODeadline.now().uptimeNanoseconds
            state.withLock { $0.lastHeartbeatNanos = now }
        }
    }

    /// A v3 publish call sends a header, then the body, with nothing between them on this
    /// connection (the script runs whole). A header has no line feed; a body always has one
    /// (each record's length ends with one), so a header whose body never came (the
    /// connection dropped between them) cannot be mistaken for a body.
    private func receivedBlockPart(_ payload: ByteBuffer) {
        if !payload.readableBytesView.contains(UInt8(ascii: "\n")) {
            guard let header = BusMessage.blockHeader(payload) else {
                reject("malformed header on the v3 events channel", payload)
                return
            }
            let unanswered = state.withLock { state in
                defer { state.pendingBlock = header }
                return state.pendingBlock
            }
            if let unanswered { reject("a v3 header without its body (\(unanswered.first))", payload) }
            return
        }
        guard
            let header = state.withLock({ state in
                defer { state.pendingBlock = nil }
                return state.pendingBlock
            })
        else {
            reject("a v3 body without its header", payload)
            return
        }
        guard payload.readableBytes == header.bytes,
            let records = BusMessage.blockRecords(in: payload, first: header.first, count: header.count)
        else {
            reject("malformed block on the v3 events channel (header \(header.first), \(header.count) events)", payload)
            return
        }
        for (cursor, body) in records { accept(cursor, entry: header.first, body) }
    }

    /// One event from pub/sub, in the order Redis published it.
    private func accept(_ cursor: EventCursor, entry: EventCursor, _ body: ByteBuffer) {
        let message = HeldMessage(cursor: cursor, entry: entry, body: body)
        let nowMillis = UInt64(max(WallClock.nowMicros() / 1000, 0))
        let needsFill = state.withLock { state -> Bool in
            if state.filling {
                hold(message, state: &state)
                return false
            }
            guard Self.isPlausible(cursor, after: state.lastCursor, nowMillis: nowMillis) else {
                // Checked against the log before it may move this node's position.
                state.filling = true
                state.fillRequestCount += 1
                state.countNextFill = false
                state.heldBeforeLastRead = 0
                hold(message, state: &state)
                return true
            }
            deliver(message, state: &state)
            return false
        }
        if needsFill { fillRequests.yield() }
    }

    /// A cursor not far ahead of the clock that assigns cursors (Redis's, seen through the
    /// newest delivered cursor and this node's own clock).
    static func isPlausible(_ cursor: EventCursor, after last: EventCursor?, nowMillis: UInt64) -> Bool {
        let reference = max(last?.milliseconds ?? 0, nowMillis)
        return cursor.milliseconds <= reference &+ futureCursorToleranceMillis
            || reference > .max - futureCursorToleranceMillis
    }

    private func hold(_ message: HeldMessage, state: inout State) {
        guard !state.heldOverflowed else { return }
        guard state.held.count < Self.maxHeldMessages,
            state.heldBytes + message.body.readableBytes <= Self.maxHeldBytes
        else {
            logger.warning(
                "too many live events held while filling a gap; the node will read them from the replay log instead",
                metadata: ["held": "\(state.held.count)", "held.bytes": "\(state.heldBytes)"])
            state.heldOverflowed = true
            state.held = []
            state.heldBytes = 0
            state.heldBeforeLastRead = 0
            return
        }
        state.held.append(message)
        state.heldBytes += message.body.readableBytes
    }

    /// Logs a bad message from Redis at most once per interval, escaped, and counts it.
    private func reject(_ what: String, _ payload: ByteBuffer) {
        let bytes = payload.readableBytesView
        state.withLock { $0.rejectedMessages += 1 }
        guard let suppressed = rejections.permit() else { return }
        logger.warning(
            "\(what); skipped",
            metadata: [
                "payload.prefix": "\(LogThrottle.escaped(bytes.prefix(64)))", "payload.bytes": "\(bytes.count)",
                "suppressed": "\(suppressed)",
            ])
    }

    /// Under the lock, so that stream fills and live messages leave in cursor order.
    /// - Parameter fromLog: read from the replay log, so a cursor the log holds.
    func deliver(_ message: HeldMessage, fromLog: Bool = false, state: inout State) {
        let cursor = message.cursor
        if let last = state.lastCursor, cursor <= last { return }
        // A live event moves the position only if it decodes: the position must be a cursor
        // the log holds, or the next gap fill takes the log for rewound and every client here
        // is told to refetch. A forged message is rarely a well-formed event. What the log
        // holds is real even when this release cannot read it (a newer node's type): past it.
        if fromLog { state.move(to: cursor, entry: message.entry, body: message.body) }
        guard let event = EventWireFormat.decode(message.body) else {
            state.rejectedMessages += 1
            if let suppressed = rejections.permit() {
                logger.warning(
                    "undecodable event on the bus; skipped",
                    metadata: ["cursor": "\(cursor)", "suppressed": "\(suppressed)"])
            }
            return
        }
        if !fromLog { state.move(to: cursor, entry: message.entry, body: message.body) }
        state.sink?(DeliveredEvent(event: event, cursor: cursor))
    }

    private func resubscribed() {
        let now = NIODeadline.now().uptimeNanoseconds
        let needsFill = state.withLock { state -> Bool in
            state.lastHeartbeatNanos = now
            defer { state.subscribedOnce = true }
            guard state.lastCursor != nil else { return false }
            state.filling = true
            state.fillRequestCount += 1
            // The first fill only covers start-up; it is not an outage worth counting.
            state.countNextFill = state.subscribedOnce
            return true
        }
        if needsFill { fillRequests.yield() }
    }

    // MARK: Replay log (reads in RedisEventBus+ReplayLog.swift)

    package func onLogReset(_ handler: @escaping @Sendable (EventCursor?) -> Void) {
        state.withLock { $0.logReset.append(handler) }
    }

    /// Tests: `hook` runs after each gap fill's last log read, before the fill releases what
    /// it held, so that a test can put a second outage exactly there.
    package func afterFillRead(_ hook: @escaping @Sendable () async -> Void) {
        state.withLock { $0.afterFillRead = hook }
    }
}

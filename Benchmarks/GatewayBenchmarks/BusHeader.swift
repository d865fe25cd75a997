/// Reserved for "bus header decode": reading the header of an event as it arrives from Redis
/// (`AiravataCluster`), once per event on every node. The benchmark comes with the change to
/// that header; register it here (name it like the others, e.g. `Bus.decodeHeader/event-NNNB`)
/// and add `AiravataCluster` to this target's dependencies in Package.swift.
func registerBusHeaderBenchmarks() {}

import Foundation
import Logging
import WyrcanChain
import WyrcanFleet

/// One image as a kind of host needs it pinned: the reference as written in the inventory, the
/// platform whose manifest must exist, the keys that must have signed it (by file fingerprint:
/// a replaced key file starts over; none: pinned without a check) and whether its registry is
/// reached over plain HTTP.
struct PinRequest: Hashable, Sendable {
    var image: String
    var platform: String
    var keys: [String]
    var insecure: Bool

    /// What a machine is given for `image` once it is pinned to `digest`.
    static func pinnedReference(_ image: String, _ digest: Digest) -> String? {
        guard let reference = try? Reference(parsing: image) else { return nil }
        return "\(reference.registry)/\(reference.repository)@\(digest)"
    }
}

/// The digest an image is served by, and how its last check went.
struct Pin: Sendable {
    enum State: String, CaseIterable {
        /// The last check passed.
        case ok
        /// The last check failed: the last good digest is served.
        case held
        /// No check has passed yet: its hosts get 503.
        case unresolved
    }

    /// The last digest that resolved (and verified, with keys): what machines are given.
    var digest: Digest?
    /// The key that signed it (nil: pinned without `verify:`).
    var signedBy: String?
    /// Why the last check failed (the tag moved to an image that is not signed, or the
    /// registry could not be read), nil when it passed.
    var problem: String?

    var state: State { digest == nil ? .unresolved : problem == nil ? .ok : .held }
}

/// Why an image is not served (yet): the tag has never resolved to an image that passed.
struct PinUnavailable: Error, Sendable {
    var image: String
    var problem: String
}

/// Resolves the inventory's pinned images (`pin: true`, `verify:`) to digests, checks their
/// signatures, and keeps the last good digest when a tag moves to an image that fails: machines
/// are only ever given `REF@sha256:…` that passed. The server checks on start, on reload and
/// every `--resolve-interval` (serialized with reloads by `InventoryStore.whileSteady`), a few
/// images at once. Pins live in memory: a restarted server checks again from scratch.
final class ImagePinner: Sendable {
    /// How many images are resolved at once.
    static let parallelResolves = 8
    /// The platform of a profile without `platform:` (machines of another architecture say
    /// theirs there).
    static let defaultPlatform = "linux/amd64"

    let options: RegistryOptions
    /// Where signature payloads pass, a directory per check (removed when the server stops).
    let workDirectory: String
    let logger: Logger
    private let pins = Locked<[PinRequest: Pin]>([:])
    /// Changes whenever a served digest changes (part of the rendered answers' cache key).
    private let versionCounter = Locked<Int>(0)
    /// Failed checks per image, for the metric.
    private let failures = Locked<[String: Int]>([:])
    private let refreshing = Locked<Void>(())

    init(options: RegistryOptions, workDirectory: String, logger: Logger) {
        self.options = options
        self.workDirectory = workDirectory
        self.logger = logger
    }

    var version: Int { versionCounter.withLock { $0 } }

    /// What `profile`'s images need pinned, in chain order; empty when it pins nothing (or
    /// boots from disk).
    static func requests(for profile: Inventory.Profile, inventory: Inventory) -> [PinRequest] {
        guard profile.pinsImages, (profile.mode ?? .boot) == .boot, let images = profile.images else { return [] }
        let keys = (profile.verify ?? []).compactMap { inventory.verifyKeys[$0]?.fingerprint }.sorted()
        return images.map { image in
            let registry = (try? Reference(parsing: image))?.registry ?? ""
            return PinRequest(image: image, platform: profile.platform ?? defaultPlatform, keys: keys, insecure: profile.insecure.contains(registry))
        }
    }

    /// Every request the inventory makes: its hosts', and the defaults' for unknown MACs.
    static func requests(in inventory: Inventory) -> Set<PinRequest> {
        var out = Set<PinRequest>()
        for mac in inventory.hosts.keys {
            if let (profile, _) = inventory.profile(for: mac) { out.formUnion(requests(for: profile, inventory: inventory)) }
        }
        if inventory.unknown == .default { out.formUnion(requests(for: inventory.defaults, inventory: inventory)) }
        return out
    }

    /// `profile`'s images as a machine is given them: by digest where pinned; the reason when
    /// one of them has no good digest yet.
    func images(for profile: Inventory.Profile, inventory: Inventory) -> Result<[String], PinUnavailable> {
        let requests = Self.requests(for: profile, inventory: inventory)
        guard !requests.isEmpty else { return .success(profile.images ?? []) }
        let current = pins.withLock { p in requests.map { p[$0] } }
        var out: [String] = []
        for (request, pin) in zip(requests, current) {
            guard let digest = pin?.digest, let reference = PinRequest.pinnedReference(request.image, digest) else {
                return .failure(PinUnavailable(image: request.image, problem: pin?.problem ?? "being resolved"))
            }
            out.append(reference)
        }
        return .success(out)
    }

    /// How each of `profile`'s pinned images stands, for `/v1/hosts`.
    func status(for profile: Inventory.Profile, inventory: Inventory) -> [(PinRequest, Pin?)] {
        let requests = Self.requests(for: profile, inventory: inventory)
        return pins.withLock { p in requests.map { ($0, p[$0]) } }
    }

    /// Resolves (and verifies) every image `inventory` pins; forgets requests it no longer makes.
    func refresh(_ inventory: Inventory, reason: String) {
        refreshing.withLock { _ in
            let requests = Array(Self.requests(in: inventory))
            guard !requests.isEmpty || !pins.withLock({ $0.isEmpty }) else { return }
            let started = Date()
            let keys = Dictionary(inventory.verifyKeys.values.map { ($0.fingerprint, $0) }, uniquingKeysWith: { first, _ in first })
            let results = Parallel.map(requests.count, width: Self.parallelResolves) { [self] i in resolve(requests[i], keys: keys) }
            let (changed, messages) = record(Array(zip(requests, results)))
            if changed { versionCounter.withLock { $0 += 1 } }
            for (isError, message) in messages { isError ? logger.error("\(message)") : logger.info("\(message)") }
            let states = pins.withLock { $0.values.map(\.state) }
            let counts = Pin.State.allCases.map { state in "\(states.filter { $0 == state }.count) \(state)" }.joined(separator: ", ")
            let seconds = String(format: "%.2f", Date().timeIntervalSince(started))
            logger.info("images pinned (\(reason)): \(counts), for \(inventory.hosts.count) hosts, in \(seconds) s")
        }
    }

    /// Stores the results (keeping the last good digest of a failed check). Returns whether any
    /// served digest changed, and what to log (logged by the caller, outside the lock).
    private func record(_ results: [(PinRequest, Result<(Digest, String?), PinUnavailable>)]) -> (Bool, [(Bool, String)]) {
        var changed = false
        var messages: [(Bool, String)] = []
        var failed: [String] = []
        pins.withLock { pins in
            var fresh: [PinRequest: Pin] = [:]
            for (request, result) in results {
                let old = pins[request]
                switch result {
                case .success(let (digest, key)):
                    if old?.digest != digest {
                        changed = true
                        let signed = key.map { ", signed by key \($0)" } ?? ""
                        messages.append((false, "\(request.image) (\(request.platform)): \(old?.digest.map { "moved from \($0) to" } ?? "pinned to") \(digest)\(signed)"))
                    }
                    fresh[request] = Pin(digest: digest, signedBy: key, problem: nil)
                case .failure(let failure):
                    failed.append(request.image)
                    let kept = old?.digest.map { "still serving \($0)" } ?? "its hosts get 503 until it passes"
                    messages.append((true, "\(request.image) (\(request.platform)): not served: \(failure.problem); \(kept)"))
                    fresh[request] = Pin(digest: old?.digest, signedBy: old?.signedBy, problem: failure.problem)
                }
            }
            if pins.keys.contains(where: { fresh[$0] == nil }) { changed = true }
            pins = fresh
        }
        failures.withLock { counts in for image in failed { counts[image, default: 0] += 1 } }
        return (changed, messages)
    }

    /// Prometheus lines: pins (image × platform) by state, failed checks by image.
    func metrics() -> String {
        let states = pins.withLock { $0.values.map(\.state) }
        var out = "# HELP wyrcan_image_pins Pinned images (per platform) by state: ok (last check passed), held (the tag moved to an image that failed its check: the last good digest is served), unresolved (no good digest yet: its hosts get 503).\n# TYPE wyrcan_image_pins gauge\n"
        for state in Pin.State.allCases {
            out += "wyrcan_image_pins{state=\"\(state.rawValue)\"} \(states.filter { $0 == state }.count)\n"
        }
        out += "# HELP wyrcan_image_pin_failures_total Checks of a pinned image that failed (unreachable, unsigned, signed by another key), by image.\n# TYPE wyrcan_image_pin_failures_total counter\n"
        for (image, n) in failures.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
            out += "wyrcan_image_pin_failures_total{image=\"\(image)\"} \(n)\n"
        }
        return out
    }
}

import CoreMetrics
import Prometheus
import Synchronization

/// The process's Prometheus registry; swift-metrics is bootstrapped into it once.
public enum NodeMetrics {
    public static let registry = PrometheusCollectorRegistry()
    private static let bootstrapped = Mutex(false)

    /// Routes every swift-metrics counter of the process into ``registry``. Safe to call twice.
    public static func bootstrap() {
        bootstrapped.withLock { done in
            guard !done else { return }
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            done = true
        }
    }

    /// The Prometheus text exposition of every metric.
    public static func render() -> String { registry.emitToString() }
}

package core_test

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mqantgen/mqantgen/core"
)

// ExampleApp_Metrics adds a module's own counter to the App's registry and
// serves the registry on a mux of the application's own, as any exporter
// that reads a prometheus.Gatherer would (Pushgateway, OpenTelemetry's
// Prometheus bridge).
func ExampleApp_Metrics() {
	app := core.NewApp(&core.Config{}, core.Options{})
	logins := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mqant_login_attempts_total",
		Help: "Login attempts, accepted or not.",
	})
	app.MustRegister(logins) // in the module's OnInit
	logins.Inc()

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(app.Metrics(), promhttp.HandlerOpts{}))
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "mqant_login_attempts_total") {
			fmt.Println(sc.Text())
		}
	}
	// Output: mqant_login_attempts_total 1
}

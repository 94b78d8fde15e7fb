package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sys/unix"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/exposition"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "timex",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) {
				return newTimexCollector(env.Logger, unix.Adjtimex), nil
			}
		},
	})
}

const (
	// timexTimeError is adjtimex(2)'s TIME_ERROR state: the clock is not
	// synchronised to a reliable server.
	timexTimeError = 5
	// timexStaNano is the STA_NANO status bit: offset and jitter are in
	// nanoseconds instead of microseconds.
	timexStaNano = 0x2000
	// timexPPM16 converts the kernel's scaled ppm (16-bit fraction, see
	// NOTES in adjtimex(2)) to a ratio.
	timexPPM16 = 1000000.0 * 65536.0
)

// timexCollector serves the kernel clock discipline state read with
// adjtimex(2) in read-only mode (modes 0), as node_exporter does.
type timexCollector struct {
	logger *slog.Logger
	// adjtimex is the system call; tests replace it.
	adjtimex func(*unix.Timex) (int, error)

	syncStatus, offset, freq, maxError, estError, status, constant, tick  family
	ppsFreq, ppsJitter, ppsShift, ppsStability, tai                       family
	ppsJitterTotal, ppsCalibrationTotal, ppsErrorTotal, ppsStabilityTotal family
}

func newTimexCollector(logger *slog.Logger, adjtimex func(*unix.Timex) (int, error)) *timexCollector {
	d := func(name, help string) family { return family{name, help} }
	return &timexCollector{
		logger:              logger,
		adjtimex:            adjtimex,
		syncStatus:          d("node_timex_sync_status", "Is clock synchronized to a reliable server (1 = yes, 0 = no)."),
		offset:              d("node_timex_offset_seconds", "Time offset in between local system and reference clock."),
		freq:                d("node_timex_frequency_adjustment_ratio", "Local clock frequency adjustment."),
		maxError:            d("node_timex_maxerror_seconds", "Maximum error in seconds."),
		estError:            d("node_timex_estimated_error_seconds", "Estimated error in seconds."),
		status:              d("node_timex_status", "Value of the status array bits."),
		constant:            d("node_timex_loop_time_constant", "Phase-locked loop time constant."),
		tick:                d("node_timex_tick_seconds", "Seconds between clock ticks."),
		ppsFreq:             d("node_timex_pps_frequency_hertz", "Pulse per second frequency."),
		ppsJitter:           d("node_timex_pps_jitter_seconds", "Pulse per second jitter."),
		ppsShift:            d("node_timex_pps_shift_seconds", "Pulse per second interval duration."),
		ppsStability:        d("node_timex_pps_stability_hertz", "Pulse per second stability, average of recent frequency changes."),
		ppsJitterTotal:      d("node_timex_pps_jitter_total", "Pulse per second count of jitter limit exceeded events."),
		ppsCalibrationTotal: d("node_timex_pps_calibration_total", "Pulse per second count of calibration intervals."),
		ppsErrorTotal:       d("node_timex_pps_error_total", "Pulse per second count of calibration errors."),
		ppsStabilityTotal:   d("node_timex_pps_stability_exceeded_total", "Pulse per second count of stability limit exceeded events."),
		tai:                 d("node_timex_tai_offset_seconds", "International Atomic Time (TAI) offset."),
	}
}

func (c *timexCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendCompact(ctx, ch, c.UpdateCompact)
}

// UpdateCompact serves the state as compact families, one series each.
func (c *timexCollector) UpdateCompact(context.Context) ([]*exposition.CompactFamily, error) {
	var tx unix.Timex // Modes 0: read only.
	state, err := c.adjtimex(&tx)
	if errors.Is(err, fs.ErrPermission) {
		c.logger.Debug("timex: adjtimex not permitted", "err", err)
		return nil, fmt.Errorf("%w: adjtimex: %w", collectors.ErrNoData, err)
	}
	if err != nil {
		return nil, fmt.Errorf("adjtimex: %w", err)
	}
	synced := 1.0
	if state == timexTimeError {
		synced = 0
	}
	divisor := 1e6 // microseconds
	if tx.Status&timexStaNano != 0 {
		divisor = 1e9
	}
	var b collectors.CompactBuilder
	gauge := func(f family, v float64) { b.Add(f.name, f.help, dto.MetricType_GAUGE, nil, v) }
	counter := func(f family, v float64) { b.Add(f.name, f.help, dto.MetricType_COUNTER, nil, v) }
	gauge(c.syncStatus, synced)
	gauge(c.offset, float64(tx.Offset)/divisor)
	gauge(c.freq, 1+float64(tx.Freq)/timexPPM16)
	gauge(c.maxError, float64(tx.Maxerror)/1e6)
	gauge(c.estError, float64(tx.Esterror)/1e6)
	gauge(c.status, float64(tx.Status))
	gauge(c.constant, float64(tx.Constant))
	gauge(c.tick, float64(tx.Tick)/1e6)
	gauge(c.ppsFreq, float64(tx.Ppsfreq)/timexPPM16)
	gauge(c.ppsJitter, float64(tx.Jitter)/divisor)
	gauge(c.ppsShift, float64(tx.Shift))
	gauge(c.ppsStability, float64(tx.Stabil)/timexPPM16)
	counter(c.ppsJitterTotal, float64(tx.Jitcnt))
	counter(c.ppsCalibrationTotal, float64(tx.Calcnt))
	counter(c.ppsErrorTotal, float64(tx.Errcnt))
	counter(c.ppsStabilityTotal, float64(tx.Stbcnt))
	gauge(c.tai, float64(tx.Tai))
	return b.Families(), nil
}

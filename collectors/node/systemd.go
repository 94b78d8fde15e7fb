package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
)

// systemdConfig holds the systemd collector's flags, spelled as
// node_exporter's, plus where the bus is.
type systemdConfig struct {
	unitInclude, unitExclude string
	private                  bool
	tasks, restarts, starts  bool
	busAddress               string
}

func init() {
	collectors.Register(collectors.Registration{
		Name:           "systemd",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		// On a Kubernetes node the agent runs in a pod without the host's
		// D-Bus socket, and the node's units are the platform's, not the
		// workload's: node_exporter and kube-prometheus leave systemd off.
		// On a bare-metal host the units are the workload (node-mixin's
		// NodeSystemdServiceFailed and NodeSystemdServiceCrashlooping).
		OffWithKubelet: true,
		Setup: func(app collectors.FlagApp) collectors.Factory {
			cfg := &systemdConfig{}
			app.Flag("collector.systemd.unit-include", "Regexp of systemd units to include. Units must both match include and not match exclude to be included.").
				Default(".+").StringVar(&cfg.unitInclude)
			app.Flag("collector.systemd.unit-exclude", "Regexp of systemd units to exclude. Units must both match include and not match exclude to be included.").
				Default(`.+\.(automount|device|mount|scope|slice)`).StringVar(&cfg.unitExclude)
			app.Flag("collector.systemd.private", "Establish a private, direct connection to systemd without dbus (Strongly discouraged since it requires root. For testing purposes only).").
				Hidden().BoolVar(&cfg.private)
			app.Flag("collector.systemd.enable-task-metrics", "Enables service unit tasks metrics unit_tasks_current and unit_tasks_max").BoolVar(&cfg.tasks)
			// On by default, unlike node_exporter: node-mixin's
			// NodeSystemdServiceCrashlooping alert needs the series, and it
			// costs one property read per service.
			app.Flag("collector.systemd.enable-restarts-metrics", "Enables service unit metric service_restart_total (node-mixin's NodeSystemdServiceCrashlooping alert needs it; on by default, unlike node_exporter).").Default("true").BoolVar(&cfg.restarts)
			app.Flag("collector.systemd.enable-start-time-metrics", "Enables service unit metric unit_start_time_seconds").BoolVar(&cfg.starts)
			app.Flag("collector.systemd.bus-address", "D-Bus address of the system bus (e.g. unix:path=/run/dbus/system_bus_socket). Empty: $DBUS_SYSTEM_BUS_ADDRESS, else the standard system bus socket.").
				StringVar(&cfg.busAddress)
			return func(env collectors.Env) (collectors.Collector, error) { return newSystemdCollector(env, *cfg) }
		},
	})
}

// systemdMinVersionSystemState is the first systemd version with the
// manager's SystemState and the timers' LastTriggerUSec (systemd 212); as
// node_exporter does, older managers are not asked for them.
const systemdMinVersionSystemState = 212

// systemdUnitStates are the ActiveState values node_systemd_unit_state
// serves one series each for, in node_exporter's order.
var systemdUnitStates = []string{"active", "activating", "deactivating", "inactive", "failed"}

var systemdVersionRE = regexp.MustCompile(`[0-9]{3,}(\.[0-9]+)?`)

// systemdCollector asks the systemd manager over D-Bus for its units, as
// node_exporter's systemd collector does, with two differences that matter
// on a host where systemd can be slow: one connection is kept across
// scrapes (and made again when the bus goes away) instead of two new ones
// per scrape, and every call is bounded by the scrape's deadline, so a
// wedged manager fails the scrape of this collector instead of hanging it.
type systemdCollector struct {
	cfg              systemdConfig
	logger           *slog.Logger
	include, exclude *regexp.Regexp
	where            string // the bus, for errors

	unit, startTime, tasksCurrent, tasksMax   *prometheus.Desc
	systemRunning, summary, restarts, trigger *prometheus.Desc
	accepted, current, refused                *prometheus.Desc
	version, virtualization                   *prometheus.Desc

	// mu guards the connection state: conn (nil until made, or after it
	// broke), and dialing, closed when the one dial in flight is done. A
	// dial runs apart from the scrape that started it, so that a bus that
	// accepts but never authenticates holds up no scrape past its deadline
	// and no second dial is started meanwhile.
	mu      sync.Mutex
	conn    *systemdConn
	dialing chan struct{}
	dialErr error
	// connected says a connection was made once: a bus socket that is
	// missing afterwards is a bus gone away (an error), not a host
	// without D-Bus (no data).
	connected bool
	// noBusUntil: on a host without a bus socket (and never connected),
	// the dial is tried again only after systemdNoBusRecheck, not every
	// scrape (a goroutine, a socket and a failed connect, ~0.1 ms).
	noBusUntil time.Time
	now        func() time.Time
}

// systemdNoBusRecheck is how long a host found without a bus socket is
// taken to have none: a D-Bus started later is served within it.
const systemdNoBusRecheck = time.Minute

// systemdConn is one connection to the manager: go-systemd's, and the bus
// connection it makes its calls on, for the manager properties go-systemd
// has no Context variant of (Version, Virtualization).
type systemdConn struct {
	sd  *sdbus.Conn
	bus *dbus.Conn
}

func newSystemdCollector(env collectors.Env, cfg systemdConfig) (*systemdCollector, error) {
	include, err := regexp.Compile("^(?:" + cfg.unitInclude + ")$")
	if err != nil {
		return nil, fmt.Errorf("--collector.systemd.unit-include: %w", err)
	}
	exclude, err := regexp.Compile("^(?:" + cfg.unitExclude + ")$")
	if err != nil {
		return nil, fmt.Errorf("--collector.systemd.unit-exclude: %w", err)
	}
	where := "the system bus"
	switch {
	case cfg.private:
		where = "systemd's private socket " + systemdPrivateAddress
	case cfg.busAddress != "":
		where = "D-Bus " + cfg.busAddress
	case os.Getenv("DBUS_SYSTEM_BUS_ADDRESS") != "":
		where = "D-Bus " + os.Getenv("DBUS_SYSTEM_BUS_ADDRESS")
	}
	name := []string{"name"}
	return &systemdCollector{
		cfg:     cfg,
		now:     time.Now,
		logger:  env.Logger,
		include: include,
		exclude: exclude,
		where:   where,
		unit: prometheus.NewDesc("node_systemd_unit_state",
			"Systemd unit", []string{"name", "state", "type"}, nil),
		startTime: prometheus.NewDesc("node_systemd_unit_start_time_seconds",
			"Start time of the unit since unix epoch in seconds.", name, nil),
		tasksCurrent: prometheus.NewDesc("node_systemd_unit_tasks_current",
			"Current number of tasks per Systemd unit", name, nil),
		tasksMax: prometheus.NewDesc("node_systemd_unit_tasks_max",
			"Maximum number of tasks per Systemd unit", name, nil),
		systemRunning: prometheus.NewDesc("node_systemd_system_running",
			"Whether the system is operational (see 'systemctl is-system-running')", nil, nil),
		summary: prometheus.NewDesc("node_systemd_units",
			"Summary of systemd unit states", []string{"state"}, nil),
		restarts: prometheus.NewDesc("node_systemd_service_restart_total",
			"Service unit count of Restart triggers", name, nil),
		trigger: prometheus.NewDesc("node_systemd_timer_last_trigger_seconds",
			"Seconds since epoch of last trigger.", name, nil),
		accepted: prometheus.NewDesc("node_systemd_socket_accepted_connections_total",
			"Total number of accepted socket connections", name, nil),
		current: prometheus.NewDesc("node_systemd_socket_current_connections",
			"Current number of socket connections", name, nil),
		refused: prometheus.NewDesc("node_systemd_socket_refused_connections_total",
			"Total number of refused socket connections", name, nil),
		version: prometheus.NewDesc("node_systemd_version",
			"Detected systemd version", []string{"version"}, nil),
		virtualization: prometheus.NewDesc("node_systemd_virtualization_info",
			"Detected virtualization technology", []string{"virtualization_type"}, nil),
	}, nil
}

// systemdPrivateAddress is systemd's own socket, which needs no dbus-daemon
// (and root).
const systemdPrivateAddress = "unix:path=/run/systemd/private"

func (c *systemdCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	conn, err := c.connection(ctx)
	if err != nil {
		return err
	}
	out, err := c.collect(ctx, conn)
	if err != nil && ctx.Err() == nil && !conn.sd.Connected() {
		// The bus went away since the last scrape (a dbus-daemon restart)
		// and the connection noticed only now: make a new one, once.
		c.drop(conn)
		c.logger.Debug("D-Bus connection closed; connecting again", "bus", c.where, "err", err)
		if conn, err = c.connection(ctx); err != nil {
			return err
		}
		out, err = c.collect(ctx, conn)
	}
	if err != nil && !conn.sd.Connected() {
		c.drop(conn)
	}
	for _, m := range out {
		ch <- m
	}
	return err
}

// connection returns the connection to the manager, making one when there
// is none or the one there is has closed. Waiting for a dial ends at ctx's
// deadline; the dial itself goes on, and its connection serves the next
// scrape.
func (c *systemdCollector) connection(ctx context.Context) (*systemdConn, error) {
	c.mu.Lock()
	if c.conn != nil && !c.conn.sd.Connected() {
		c.conn.sd.Close()
		c.conn = nil
	}
	if c.conn != nil {
		conn := c.conn
		c.mu.Unlock()
		return conn, nil
	}
	if c.dialing == nil && c.now().Before(c.noBusUntil) {
		defer c.mu.Unlock()
		return nil, c.noBus()
	}
	if c.dialing == nil {
		done := make(chan struct{})
		c.dialing = done
		go func() {
			conn, err := c.dial()
			c.mu.Lock()
			c.conn, c.dialErr, c.dialing = conn, err, nil
			c.connected = c.connected || err == nil
			if c.missingBus() {
				c.noBusUntil = c.now().Add(systemdNoBusRecheck)
			}
			c.mu.Unlock()
			close(done)
		}()
	}
	done := c.dialing
	c.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("connecting to %s: %w", c.where, ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		if c.missingBus() {
			return nil, c.noBus()
		}
		return nil, fmt.Errorf("connecting to %s: %w", c.where, c.dialErr)
	}
	return c.conn, nil
}

// missingBus says the last dial found no bus socket on a host where none
// was ever reached: a host without systemd and D-Bus (a container, an
// OpenRC or runit system). c.mu is held.
func (c *systemdCollector) missingBus() bool {
	return c.dialErr != nil && errors.Is(c.dialErr, fs.ErrNotExist) && !c.connected
}

// noBus is the outcome of a scrape on such a host: no data. c.mu is held.
func (c *systemdCollector) noBus() error {
	return fmt.Errorf("%w: connecting to %s: %w", collectors.ErrNoData, c.where, c.dialErr)
}

// drop closes conn and forgets it, unless a newer one replaced it already.
func (c *systemdCollector) drop(conn *systemdConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	conn.sd.Close()
	if c.conn == conn {
		c.conn = nil
	}
}

// dial connects to the manager as go-systemd's constructors do (two bus
// connections: one for calls, one for signals), on the configured bus.
func (c *systemdCollector) dial() (*systemdConn, error) {
	var calls *dbus.Conn
	sd, err := sdbus.NewConnection(func() (*dbus.Conn, error) {
		bus, err := c.dialBus()
		if err == nil && calls == nil {
			calls = bus // go-systemd makes its calls on the first one
		}
		return bus, err
	})
	if err != nil {
		return nil, err
	}
	return &systemdConn{sd: sd, bus: calls}, nil
}

// dialBus opens one authenticated bus connection. go-systemd's
// NewSystemConnectionContext does the same on the default address only,
// and would tie the connection's life to a context; this one lives until
// closed.
func (c *systemdCollector) dialBus() (*dbus.Conn, error) {
	var bus *dbus.Conn
	var err error
	switch {
	case c.cfg.private:
		bus, err = dbus.Dial(systemdPrivateAddress)
	case c.cfg.busAddress != "":
		bus, err = dbus.Dial(c.cfg.busAddress)
	default:
		bus, err = dbus.SystemBusPrivate() // honours DBUS_SYSTEM_BUS_ADDRESS
	}
	if err != nil {
		return nil, err
	}
	// EXTERNAL authentication by uid, as go-systemd does: no user name
	// lookup.
	if err := bus.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		bus.Close()
		return nil, err
	}
	if !c.cfg.private { // systemd's own socket is no bus: no Hello
		if err := bus.Hello(); err != nil {
			bus.Close()
			return nil, err
		}
	}
	return bus, nil
}

// collect asks the manager for everything and returns the metrics, which
// Update sends only once it knows whether the connection held. Per-unit
// properties that cannot be read are left out (logged at debug), as
// node_exporter does; a call cut off by ctx ends the collection.
func (c *systemdCollector) collect(ctx context.Context, conn *systemdConn) ([]prometheus.Metric, error) {
	var out []prometheus.Metric
	emit := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		for i := range labels {
			labels[i] = hostfile.ValidLabel(labels[i])
		}
		out = append(out, prometheus.MustNewConstMetric(d, t, v, labels...))
	}

	version, versionText, err := c.managerVersion(ctx, conn)
	if err != nil {
		return out, err
	}
	emit(c.version, prometheus.GaugeValue, version, versionText)
	virt, err := c.managerString(ctx, conn, "Virtualization")
	switch {
	case ctx.Err() != nil:
		return out, c.callError("reading the manager's Virtualization", err)
	case err != nil:
		c.logger.Debug("cannot read the manager's Virtualization property", "err", err)
		virt = "unknown"
	case virt == "":
		virt = "none" // no virtualization detected: bare metal
	}
	emit(c.virtualization, prometheus.GaugeValue, 1, virt)

	all, err := conn.sd.ListUnitsContext(ctx)
	if err != nil {
		return out, c.callError("listing units", err)
	}
	counts := map[string]float64{}
	for _, s := range systemdUnitStates {
		counts[s] = 0
	}
	for _, u := range all {
		counts[u.ActiveState]++
	}
	for state, n := range counts {
		emit(c.summary, prometheus.GaugeValue, n, state)
	}

	units := make([]sdbus.UnitStatus, 0, len(all))
	for _, u := range all {
		if u.LoadState == "loaded" && c.include.MatchString(u.Name) && !c.exclude.MatchString(u.Name) {
			units = append(units, u)
		}
	}
	// property reads one property of a unit; ok is false when it is left
	// out, err non-nil only when the collection must end.
	property := func(unit, iface, name string) (any, bool, error) {
		p, err := conn.sd.GetUnitTypePropertyContext(ctx, unit, iface, name)
		if err != nil {
			if ctx.Err() != nil {
				return nil, false, c.callError("reading "+unit+" "+name, err)
			}
			c.logger.Debug("cannot read a unit property", "unit", unit, "property", name, "err", err)
			return nil, false, nil
		}
		return p.Value.Value(), true, nil
	}

	for _, u := range units {
		kind := ""
		switch {
		case strings.HasSuffix(u.Name, ".service"):
			kind = "Service"
		case strings.HasSuffix(u.Name, ".mount"):
			kind = "Mount"
		}
		typ := ""
		if kind != "" {
			v, ok, err := property(u.Name, kind, "Type")
			if err != nil {
				return out, err
			}
			if s, isString := v.(string); ok && isString {
				typ = s
			}
		}
		for _, s := range systemdUnitStates {
			v := 0.0
			if s == u.ActiveState {
				v = 1
			}
			emit(c.unit, prometheus.GaugeValue, v, u.Name, s, typ)
		}
		if c.cfg.restarts && kind == "Service" {
			// NRestarts: systemd 235 and later.
			v, ok, err := property(u.Name, "Service", "NRestarts")
			if err != nil {
				return out, err
			}
			if n, isUint := v.(uint32); ok && isUint {
				emit(c.restarts, prometheus.CounterValue, float64(n), u.Name)
			}
		}
	}

	if c.cfg.starts {
		for _, u := range units {
			usec := uint64(0)
			if u.ActiveState == "active" {
				v, ok, err := property(u.Name, "Unit", "ActiveEnterTimestamp")
				if err != nil {
					return out, err
				}
				t, isUint := v.(uint64)
				if !ok || !isUint {
					continue
				}
				usec = t
			}
			emit(c.startTime, prometheus.GaugeValue, float64(usec)/1e6, u.Name)
		}
	}

	if c.cfg.tasks {
		for _, u := range units {
			if !strings.HasSuffix(u.Name, ".service") {
				continue
			}
			for _, p := range []struct {
				name string
				desc *prometheus.Desc
			}{{"TasksCurrent", c.tasksCurrent}, {"TasksMax", c.tasksMax}} {
				v, ok, err := property(u.Name, "Service", p.name)
				if err != nil {
					return out, err
				}
				// (uint64)-1 is systemd's "not set" (no limit, no
				// accounting): left out.
				if n, isUint := v.(uint64); ok && isUint && n != math.MaxUint64 {
					emit(p.desc, prometheus.GaugeValue, float64(n), u.Name)
				}
			}
		}
	}

	if version >= systemdMinVersionSystemState {
		for _, u := range units {
			if !strings.HasSuffix(u.Name, ".timer") {
				continue
			}
			v, ok, err := property(u.Name, "Timer", "LastTriggerUSec")
			if err != nil {
				return out, err
			}
			if usec, isUint := v.(uint64); ok && isUint {
				emit(c.trigger, prometheus.GaugeValue, float64(usec)/1e6, u.Name)
			}
		}
	}

	for _, u := range units {
		if !strings.HasSuffix(u.Name, ".socket") {
			continue
		}
		v, ok, err := property(u.Name, "Socket", "NAccepted")
		if err != nil {
			return out, err
		}
		n, isUint := v.(uint32)
		if !ok || !isUint {
			continue
		}
		emit(c.accepted, prometheus.CounterValue, float64(n), u.Name)
		if v, ok, err = property(u.Name, "Socket", "NConnections"); err != nil {
			return out, err
		}
		if n, isUint = v.(uint32); !ok || !isUint {
			continue
		}
		emit(c.current, prometheus.GaugeValue, float64(n), u.Name)
		// NRefused: systemd 239 and later. A gauge, as node_exporter
		// serves it despite the _total.
		if v, ok, err = property(u.Name, "Socket", "NRefused"); err != nil {
			return out, err
		}
		if n, isUint = v.(uint32); ok && isUint {
			emit(c.refused, prometheus.GaugeValue, float64(n), u.Name)
		}
	}

	if version >= systemdMinVersionSystemState {
		state, err := conn.sd.SystemStateContext(ctx)
		if err != nil {
			return out, c.callError("reading the manager's SystemState", err)
		}
		running := 0.0
		if s, _ := state.Value.Value().(string); s == "running" {
			running = 1
		}
		emit(c.systemRunning, prometheus.GaugeValue, running)
	}
	return out, nil
}

// managerVersion is the manager's Version parsed as node_exporter parses
// it: (0, "") when it cannot be read or parsed, an error only when ctx
// ended.
func (c *systemdCollector) managerVersion(ctx context.Context, conn *systemdConn) (float64, string, error) {
	text, err := c.managerString(ctx, conn, "Version")
	if err != nil {
		if ctx.Err() != nil {
			return 0, "", c.callError("reading the manager's Version", err)
		}
		c.logger.Debug("cannot read the manager's Version property; serving version 0", "err", err)
		return 0, "", nil
	}
	v, err := strconv.ParseFloat(systemdVersionRE.FindString(text), 64)
	if err != nil {
		c.logger.Debug("unparsable systemd version", "version", text)
		return 0, "", nil
	}
	if v < systemdMinVersionSystemState {
		c.logger.Debug("systemd older than 212: no system state or timer metrics", "version", text)
	}
	return v, text, nil
}

// managerString reads a string property of the Manager interface.
// go-systemd's GetManagerProperty has no Context variant (and would return
// the value in GVariant text, quoted): the call goes through the bus
// connection go-systemd uses, bounded by ctx.
func (c *systemdCollector) managerString(ctx context.Context, conn *systemdConn, name string) (string, error) {
	var v dbus.Variant
	err := conn.bus.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1").
		CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, "org.freedesktop.systemd1.Manager", name).
		Store(&v)
	if err != nil {
		return "", err
	}
	s, ok := v.Value().(string)
	if !ok {
		return "", fmt.Errorf("property %s is %s, not a string", name, v.Signature())
	}
	return s, nil
}

// callError names the call and the bus.
func (c *systemdCollector) callError(what string, err error) error {
	return fmt.Errorf("systemd over %s: %s: %w", c.where, what, err)
}

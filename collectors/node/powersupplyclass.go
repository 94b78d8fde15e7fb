package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/sysfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "powersupplyclass",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(app collectors.FlagApp) collectors.Factory {
			cfg := &powerSupplyConfig{}
			// node_exporter spells this flag's namespace "powersupply".
			app.Flag("collector.powersupply.ignored-supplies", "Regexp of power supplies the powersupplyclass collector skips.").
				Default("^$").StringVar(&cfg.ignoredSupplies)
			return func(env collectors.Env) (collectors.Collector, error) { return newPowerSupplyCollector(env, *cfg) }
		},
	})
}

type powerSupplyConfig struct {
	ignoredSupplies string
}

// powerSupplyValue is one numeric attribute of a power supply.
type powerSupplyValue struct {
	desc *prometheus.Desc
	// div converts the kernel's unit: 1e6 for µA, µV, µW, µWh; 10 for
	// tenths of °C.
	div   float64
	value func(*sysfs.PowerSupply) *int64
}

// powerSupplyCollector serves /sys/class/power_supply (batteries, AC
// adapters, UPSes, USB supplies).
type powerSupplyCollector struct {
	sys     sysfs.FS
	sysPath string
	logger  *slog.Logger
	ignored *regexp.Regexp
	values  []powerSupplyValue
}

func newPowerSupplyCollector(env collectors.Env, cfg powerSupplyConfig) (*powerSupplyCollector, error) {
	ignored, err := regexp.Compile(cfg.ignoredSupplies)
	if err != nil {
		return nil, fmt.Errorf("--collector.powersupply.ignored-supplies: %w", err)
	}
	v := func(name string, div float64, value func(*sysfs.PowerSupply) *int64) powerSupplyValue {
		// node_exporter's help names the attribute as in the metric name.
		help := strings.TrimPrefix(name, "node_power_supply_") + " value of /sys/class/power_supply/<power_supply>."
		return powerSupplyValue{desc: prometheus.NewDesc(name, help, []string{"power_supply"}, nil), div: div, value: value}
	}
	const micro, deci = 1e6, 10
	return &powerSupplyCollector{
		sys:     env.Sys,
		sysPath: env.Paths.SysFS,
		logger:  env.Logger,
		ignored: ignored,
		values: []powerSupplyValue{
			v("node_power_supply_authentic", 1, func(p *sysfs.PowerSupply) *int64 { return p.Authentic }),
			v("node_power_supply_calibrate", 1, func(p *sysfs.PowerSupply) *int64 { return p.Calibrate }),
			v("node_power_supply_capacity", 1, func(p *sysfs.PowerSupply) *int64 { return p.Capacity }),
			v("node_power_supply_capacity_alert_max", 1, func(p *sysfs.PowerSupply) *int64 { return p.CapacityAlertMax }),
			v("node_power_supply_capacity_alert_min", 1, func(p *sysfs.PowerSupply) *int64 { return p.CapacityAlertMin }),
			v("node_power_supply_cyclecount", 1, func(p *sysfs.PowerSupply) *int64 { return p.CycleCount }),
			v("node_power_supply_online", 1, func(p *sysfs.PowerSupply) *int64 { return p.Online }),
			v("node_power_supply_present", 1, func(p *sysfs.PowerSupply) *int64 { return p.Present }),
			v("node_power_supply_time_to_empty_seconds", 1, func(p *sysfs.PowerSupply) *int64 { return p.TimeToEmptyNow }),
			v("node_power_supply_time_to_full_seconds", 1, func(p *sysfs.PowerSupply) *int64 { return p.TimeToFullNow }),

			v("node_power_supply_current_boot", micro, func(p *sysfs.PowerSupply) *int64 { return p.CurrentBoot }),
			v("node_power_supply_current_max", micro, func(p *sysfs.PowerSupply) *int64 { return p.CurrentMax }),
			v("node_power_supply_current_ampere", micro, func(p *sysfs.PowerSupply) *int64 { return p.CurrentNow }),
			v("node_power_supply_energy_empty", micro, func(p *sysfs.PowerSupply) *int64 { return p.EnergyEmpty }),
			v("node_power_supply_energy_empty_design", micro, func(p *sysfs.PowerSupply) *int64 { return p.EnergyEmptyDesign }),
			v("node_power_supply_energy_full", micro, func(p *sysfs.PowerSupply) *int64 { return p.EnergyFull }),
			v("node_power_supply_energy_full_design", micro, func(p *sysfs.PowerSupply) *int64 { return p.EnergyFullDesign }),
			v("node_power_supply_energy_watthour", micro, func(p *sysfs.PowerSupply) *int64 { return p.EnergyNow }),
			v("node_power_supply_voltage_boot", micro, func(p *sysfs.PowerSupply) *int64 { return p.VoltageBoot }),
			v("node_power_supply_voltage_max", micro, func(p *sysfs.PowerSupply) *int64 { return p.VoltageMax }),
			v("node_power_supply_voltage_max_design", micro, func(p *sysfs.PowerSupply) *int64 { return p.VoltageMaxDesign }),
			v("node_power_supply_voltage_min", micro, func(p *sysfs.PowerSupply) *int64 { return p.VoltageMin }),
			v("node_power_supply_voltage_min_design", micro, func(p *sysfs.PowerSupply) *int64 { return p.VoltageMinDesign }),
			v("node_power_supply_voltage_volt", micro, func(p *sysfs.PowerSupply) *int64 { return p.VoltageNow }),
			v("node_power_supply_voltage_ocv", micro, func(p *sysfs.PowerSupply) *int64 { return p.VoltageOCV }),
			v("node_power_supply_charge_control_limit", micro, func(p *sysfs.PowerSupply) *int64 { return p.ChargeControlLimit }),
			v("node_power_supply_charge_control_limit_max", micro, func(p *sysfs.PowerSupply) *int64 { return p.ChargeControlLimitMax }),
			v("node_power_supply_charge_counter", micro, func(p *sysfs.PowerSupply) *int64 { return p.ChargeCounter }),
			v("node_power_supply_charge_empty", micro, func(p *sysfs.PowerSupply) *int64 { return p.ChargeEmpty }),
			v("node_power_supply_charge_empty_design", micro, func(p *sysfs.PowerSupply) *int64 { return p.ChargeEmptyDesign }),
			v("node_power_supply_charge_full", micro, func(p *sysfs.PowerSupply) *int64 { return p.ChargeFull }),
			v("node_power_supply_charge_full_design", micro, func(p *sysfs.PowerSupply) *int64 { return p.ChargeFullDesign }),
			v("node_power_supply_charge_ampere", micro, func(p *sysfs.PowerSupply) *int64 { return p.ChargeNow }),
			v("node_power_supply_charge_term_current", micro, func(p *sysfs.PowerSupply) *int64 { return p.ChargeTermCurrent }),
			v("node_power_supply_constant_charge_current", micro, func(p *sysfs.PowerSupply) *int64 { return p.ConstantChargeCurrent }),
			v("node_power_supply_constant_charge_current_max", micro, func(p *sysfs.PowerSupply) *int64 { return p.ConstantChargeCurrentMax }),
			v("node_power_supply_constant_charge_voltage", micro, func(p *sysfs.PowerSupply) *int64 { return p.ConstantChargeVoltage }),
			v("node_power_supply_constant_charge_voltage_max", micro, func(p *sysfs.PowerSupply) *int64 { return p.ConstantChargeVoltageMax }),
			v("node_power_supply_precharge_current", micro, func(p *sysfs.PowerSupply) *int64 { return p.PrechargeCurrent }),
			v("node_power_supply_input_current_limit", micro, func(p *sysfs.PowerSupply) *int64 { return p.InputCurrentLimit }),
			v("node_power_supply_power_watt", micro, func(p *sysfs.PowerSupply) *int64 { return p.PowerNow }),

			v("node_power_supply_temp_celsius", deci, func(p *sysfs.PowerSupply) *int64 { return p.Temp }),
			v("node_power_supply_temp_alert_max_celsius", deci, func(p *sysfs.PowerSupply) *int64 { return p.TempAlertMax }),
			v("node_power_supply_temp_alert_min_celsius", deci, func(p *sysfs.PowerSupply) *int64 { return p.TempAlertMin }),
			v("node_power_supply_temp_ambient_celsius", deci, func(p *sysfs.PowerSupply) *int64 { return p.TempAmbient }),
			v("node_power_supply_temp_ambient_max_celsius", deci, func(p *sysfs.PowerSupply) *int64 { return p.TempAmbientMax }),
			v("node_power_supply_temp_ambient_min_celsius", deci, func(p *sysfs.PowerSupply) *int64 { return p.TempAmbientMin }),
			v("node_power_supply_temp_max_celsius", deci, func(p *sysfs.PowerSupply) *int64 { return p.TempMax }),
			v("node_power_supply_temp_min_celsius", deci, func(p *sysfs.PowerSupply) *int64 { return p.TempMin }),
		},
	}, nil
}

func (c *powerSupplyCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	supplies, err := c.sys.PowerSupplyClass()
	if errors.Is(err, fs.ErrNotExist) {
		c.logger.Debug("powersupplyclass: no power_supply class", "err", err)
		return fmt.Errorf("%w: %w", collectors.ErrNoData, err)
	}
	if err != nil {
		return fmt.Errorf("reading %s/class/power_supply: %w", c.sysPath, err)
	}
	if len(supplies) == 0 {
		return fmt.Errorf("%w: no power supply in %s/class/power_supply", collectors.ErrNoData, c.sysPath)
	}
	for _, name := range slices.Sorted(maps.Keys(supplies)) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if c.ignored.MatchString(name) {
			continue
		}
		p := supplies[name]
		c.send(ch, &p)
	}
	return nil
}

func (c *powerSupplyCollector) send(ch chan<- prometheus.Metric, p *sysfs.PowerSupply) {
	name := hostfile.ValidLabel(p.Name)
	for _, v := range c.values {
		if x := v.value(p); x != nil {
			ch <- prometheus.MustNewConstMetric(v.desc, prometheus.GaugeValue, float64(*x)/v.div, name)
		}
	}
	// node_power_supply_info carries only the attributes the supply has.
	var keys, values []string
	for _, kv := range [][2]string{
		{"power_supply", p.Name}, {"capacity_level", p.CapacityLevel}, {"charge_type", p.ChargeType},
		{"health", p.Health}, {"manufacturer", p.Manufacturer}, {"model_name", p.ModelName},
		{"serial_number", p.SerialNumber}, {"status", p.Status}, {"technology", p.Technology},
		{"type", p.Type}, {"usb_type", p.UsbType}, {"scope", p.Scope},
	} {
		if kv[1] != "" {
			keys = append(keys, kv[0])
			values = append(values, hostfile.ValidLabel(kv[1]))
		}
	}
	desc := prometheus.NewDesc("node_power_supply_info", "info of /sys/class/power_supply/<power_supply>.", keys, nil)
	ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, 1, values...)
}

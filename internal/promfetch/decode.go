package promfetch

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/protodelim"
)

// Decode parses a metrics body in the format its Content-Type
// names (delimited protobuf, text or OpenMetrics) into families that are
// served unchanged: names, help, types, labels and values as they came,
// families sorted by name, explicit timestamps removed
// (docs/architecture.md#paths-and-jobs).
//
// A body that is not a metrics exposition (an HTML error page, garbage) is an
// error wrapping ErrBadBody, with no families: nothing of it is served. A
// family or series that appears twice, which no exposition may contain, is
// dropped and reported in an error wrapping ErrBadBody and ErrRepaired next
// to the remaining families, which are good to serve.
func Decode(body []byte, contentType string) ([]*dto.MetricFamily, error) {
	format := expfmt.ResponseFormat(http.Header{"Content-Type": []string{contentType}})
	switch format.FormatType() {
	case expfmt.TypeProtoDelim, expfmt.TypeTextPlain, expfmt.TypeOpenMetrics:
	default:
		return nil, fmt.Errorf("%w: Content-Type %q is not a Prometheus exposition format (the body starts %q)", ErrBadBody, contentType, start(body))
	}
	var dec expfmt.Decoder
	if format.FormatType() == expfmt.TypeProtoDelim {
		dec = newProtoDecoder(body, format)
	} else {
		dec = expfmt.NewDecoder(bytes.NewReader(body), format)
	}
	var mfs []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("%w: parsing %s: %w (the body starts %q)", ErrBadBody, contentType, err, start(body))
		}
		mfs = append(mfs, mf)
	}
	slices.SortStableFunc(mfs, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return dropDuplicates(mfs)
}

// protoDecoder reads delimited protobuf families. expfmt's own decoder
// reads a message of whatever length its prefix claims (MaxSize -1): seven
// bytes of garbage ask for terabytes and the agent dies of out-of-memory
// (found by FuzzDecode). Here no message may be longer than the body.
type protoDecoder struct {
	r      *bytes.Reader
	opts   protodelim.UnmarshalOptions
	scheme model.ValidationScheme
}

func newProtoDecoder(body []byte, format expfmt.Format) *protoDecoder {
	scheme := model.LegacyValidation
	if format.ToEscapingScheme() == model.NoEscaping {
		scheme = model.UTF8Validation
	}
	return &protoDecoder{r: bytes.NewReader(body), opts: protodelim.UnmarshalOptions{MaxSize: int64(len(body))}, scheme: scheme}
}

// Decode reads the next family and checks its names as expfmt does.
func (d *protoDecoder) Decode(mf *dto.MetricFamily) error {
	if err := d.opts.UnmarshalFrom(d.r, mf); err != nil {
		return err
	}
	if !d.scheme.IsValidMetricName(mf.GetName()) {
		return fmt.Errorf("invalid metric name %q", mf.GetName())
	}
	for _, m := range mf.GetMetric() {
		for _, lp := range m.GetLabel() {
			if !d.scheme.IsValidLabelName(lp.GetName()) {
				return fmt.Errorf("invalid label name %q in %s", lp.GetName(), mf.GetName())
			}
			if !model.LabelValue(lp.GetValue()).IsValid() {
				return fmt.Errorf("label value %q of %s is not UTF-8", lp.GetValue(), mf.GetName())
			}
		}
	}
	return nil
}

// dropDuplicates removes repeated families and repeated series (same label
// set) and strips timestamps, in one pass.
func dropDuplicates(mfs []*dto.MetricFamily) ([]*dto.MetricFamily, error) {
	var errs []error
	out := mfs[:0]
	seen := map[uint64]struct{}{}
	var h xxhash.Digest
	for i, mf := range mfs {
		if i > 0 && mf.GetName() == mfs[i-1].GetName() {
			errs = append(errs, fmt.Errorf("family %s appears twice; the second was dropped", mf.GetName()))
			continue
		}
		clear(seen)
		ms := mf.Metric[:0]
		dups := 0
		for _, m := range mf.Metric {
			m.TimestampMs = nil
			h.Reset()
			for _, lp := range m.Label {
				_, _ = h.WriteString(lp.GetName())
				_, _ = h.Write([]byte{0xff})
				_, _ = h.WriteString(lp.GetValue())
				_, _ = h.Write([]byte{0xfe})
			}
			sum := h.Sum64()
			if _, dup := seen[sum]; dup {
				dups++
				continue
			}
			seen[sum] = struct{}{}
			ms = append(ms, m)
		}
		mf.Metric = ms
		if dups > 0 {
			errs = append(errs, fmt.Errorf("family %s has %d repeated series; dropped", mf.GetName(), dups))
		}
		out = append(out, mf)
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("%w: %w: %w", ErrBadBody, ErrRepaired, errors.Join(errs...))
	}
	return out, nil
}

// start is the beginning of a body, for error messages.
func start(body []byte) string {
	const n = 64
	if len(body) > n {
		return string(body[:n]) + "…"
	}
	return string(body)
}

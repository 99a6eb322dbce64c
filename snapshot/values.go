package snapshot

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
)

// Values is a key tuple (a primary key, a sweep's key column) as cdc normalises it: int64,
// uint64, float64, string, []byte, time.Time or decimal.Decimal. It round-trips through JSON
// with its Go types, so a stored cursor resumes at exactly the same key.
type Values []any

type taggedValue struct {
	T string `json:"t"` // i u f s b t d
	V string `json:"v"`
}

// MarshalJSON encodes each value with a type tag.
func (vs Values) MarshalJSON() ([]byte, error) {
	out := make([]taggedValue, len(vs))
	for i, v := range vs {
		switch x := v.(type) {
		case int64:
			out[i] = taggedValue{"i", strconv.FormatInt(x, 10)}
		case int:
			out[i] = taggedValue{"i", strconv.Itoa(x)}
		case uint64:
			out[i] = taggedValue{"u", strconv.FormatUint(x, 10)}
		case float64:
			out[i] = taggedValue{"f", strconv.FormatFloat(x, 'g', -1, 64)}
		case string:
			out[i] = taggedValue{"s", x}
		case []byte:
			out[i] = taggedValue{"b", base64.StdEncoding.EncodeToString(x)}
		case time.Time:
			out[i] = taggedValue{"t", x.UTC().Format(time.RFC3339Nano)}
		case decimal.Decimal:
			out[i] = taggedValue{"d", x.String()}
		default:
			return nil, fmt.Errorf("key value %d: unsupported type %T", i, v)
		}
	}
	return json.Marshal(out)
}

// UnmarshalJSON is the inverse of MarshalJSON.
func (vs *Values) UnmarshalJSON(b []byte) error {
	var in []taggedValue
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	out := make(Values, len(in))
	for i, tv := range in {
		var err error
		switch tv.T {
		case "i":
			out[i], err = strconv.ParseInt(tv.V, 10, 64)
		case "u":
			out[i], err = strconv.ParseUint(tv.V, 10, 64)
		case "f":
			out[i], err = strconv.ParseFloat(tv.V, 64)
		case "s":
			out[i] = tv.V
		case "b":
			out[i], err = base64.StdEncoding.DecodeString(tv.V)
		case "t":
			out[i], err = time.Parse(time.RFC3339Nano, tv.V)
		case "d":
			out[i], err = decimal.NewFromString(tv.V)
		default:
			err = fmt.Errorf("unknown type tag %q", tv.T)
		}
		if err != nil {
			return fmt.Errorf("key value %d: %w", i, err)
		}
	}
	*vs = out
	return nil
}

// String renders the tuple for logs and default keys: values joined by ",".
func (vs Values) String() string {
	b := make([]byte, 0, 16*len(vs))
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		switch x := v.(type) {
		case time.Time:
			b = x.UTC().AppendFormat(b, time.RFC3339Nano)
		case []byte:
			b = append(b, base64.StdEncoding.EncodeToString(x)...)
		default:
			b = fmt.Append(b, v)
		}
	}
	return string(b)
}

// Package contractfacts reads the facts the service and this CDK app must
// agree on (error types, routes, environment variables, table schema,
// metrics) from the service module's internal/contract/contract.json, for
// the drift tests of infra's packages. The service module keeps that file
// equal to its internal/contract package; reading the file, rather than
// importing the package, keeps this module free of the service's
// dependencies and usable on its own.
package contractfacts

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Route is one method on one path template, the operation it invokes and
// the function serving it.
type Route struct {
	Method   string `json:"method"`
	Template string `json:"template"`
	Op       string `json:"op"`
	Function string `json:"function"`
}

// File is contract.json's path from the repository root.
const File = "internal/contract/contract.json"

// Facts mirrors contract.Facts.
type Facts struct {
	ErrorCodes []struct {
		Code            string `json:"code"`
		Status          int    `json:"status"`
		LambdaErrorType string `json:"lambda_error_type"`
	} `json:"error_codes"`
	LambdaErrorTypePrefix string   `json:"lambda_error_type_prefix"`
	Routes                []Route  `json:"routes"`
	FlyteRoutes           []Route  `json:"flyte_routes"`
	FlyteBinaryMediaTypes []string `json:"flyte_binary_media_types"`
	Functions             []string `json:"functions"`
	FunctionEnv           []string `json:"function_env"`
	LogLevels             []string `json:"log_levels"`
	Table                 struct {
		PartitionKey string `json:"partition_key"`
		SortKey      string `json:"sort_key"`
		TTLAttribute string `json:"ttl_attribute"`
	} `json:"table"`
	Metrics struct {
		Namespace string `json:"namespace"`
		Dimension string `json:"dimension"`
		Metrics   []struct {
			Name string `json:"name"`
			Unit string `json:"unit"`
		} `json:"metrics"`
	} `json:"metrics"`
}

// Load reads contract.json, found by walking up from the working directory
// (a test's is its package's folder) to the repository root.
func Load() (Facts, error) {
	wd, err := os.Getwd()
	if err != nil {
		return Facts{}, err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		b, err := os.ReadFile(filepath.Join(dir, File))
		if err == nil {
			var f Facts
			if err := json.Unmarshal(b, &f); err != nil {
				return Facts{}, fmt.Errorf("%s: %w", filepath.Join(dir, File), err)
			}
			if len(f.Functions) == 0 || len(f.Routes) == 0 {
				return Facts{}, fmt.Errorf("%s: no functions or routes", filepath.Join(dir, File))
			}
			return f, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return Facts{}, err
		}
		if filepath.Dir(dir) == dir {
			return Facts{}, fmt.Errorf("%s not found above %s", File, wd)
		}
	}
}

// LambdaErrorTypes lists every Lambda error type of the contract.
func (f Facts) LambdaErrorTypes() []string {
	var out []string
	for _, c := range f.ErrorCodes {
		out = append(out, c.LambdaErrorType)
	}
	return out
}

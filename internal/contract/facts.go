package contract

// Facts is every fact of the package in one value: what contract.json
// holds, for readers outside this Go module (infra/).
type Facts struct {
	ErrorCodes            []ErrorCode `json:"error_codes"`
	LambdaErrorTypePrefix string      `json:"lambda_error_type_prefix"`
	Routes                []Route     `json:"routes"`
	FlyteRoutes           []Route     `json:"flyte_routes"`
	FlyteBinaryMediaTypes []string    `json:"flyte_binary_media_types"`
	Functions             []string    `json:"functions"`
	FunctionEnv           []string    `json:"function_env"`
	LogLevels             []string    `json:"log_levels"`
	Table                 TableFacts  `json:"table"`
	Metrics               MetricFacts `json:"metrics"`
}

// TableFacts are the table's key and TTL attribute names.
type TableFacts struct {
	PartitionKey string `json:"partition_key"`
	SortKey      string `json:"sort_key"`
	TTLAttribute string `json:"ttl_attribute"`
}

// MetricFacts are the metrics' namespace, dimension and names.
type MetricFacts struct {
	Namespace string   `json:"namespace"`
	Dimension string   `json:"dimension"`
	Metrics   []Metric `json:"metrics"`
}

// All returns every fact.
func All() Facts {
	return Facts{
		ErrorCodes:            ErrorCodes(),
		LambdaErrorTypePrefix: LambdaErrorTypePrefix,
		Routes:                Routes(),
		FlyteRoutes:           FlyteRoutes(),
		FlyteBinaryMediaTypes: FlyteBinaryMediaTypes(),
		Functions:             Functions(),
		FunctionEnv:           FunctionEnv(),
		LogLevels:             LogLevels(),
		Table:                 TableFacts{PartitionKey: PartitionKey, SortKey: SortKey, TTLAttribute: TTLAttribute},
		Metrics:               MetricFacts{Namespace: MetricNamespace, Dimension: MetricDimensionOp, Metrics: Metrics()},
	}
}

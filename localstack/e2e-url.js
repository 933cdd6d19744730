// Prints the end-to-end suite's command line for a stack deployed into
// LocalStack, from cdklocal's --outputs-file.
// usage: node localstack/e2e-url.js <outputs.json> <stack name>
const [file, stack] = process.argv.slice(2);
const o = require(require("path").resolve(file))[stack];
if (!o || !o.ApiId) {
  console.error(`no ApiId output for ${stack} in ${file}`);
  process.exit(1);
}
// REST APIs (ApiStage set): LocalStack's path-style URL, which needs no DNS.
// HTTP APIs: the host-style URL of the $default stage.
const url = o.ApiStage
  ? `http://localhost:4566/restapis/${o.ApiId}/${o.ApiStage}/_user_request_`
  : `http://${o.ApiId}.execute-api.localhost.localstack.cloud:4566`;
console.log(`\n${stack} is up in LocalStack. Run the end-to-end suite against it with:\n\n  make e2e STAMPEDE_API_URL=${url}\n`);

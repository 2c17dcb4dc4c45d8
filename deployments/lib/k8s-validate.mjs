// k8s-validate.mjs - offline schema check of Kubernetes manifests, as no API
// server is needed: every document of each YAML file is checked against the
// OpenAPI schema of its apiVersion and kind, as kubernetes-models ships it.
//
//   node k8s-validate.mjs FILE...
//
// The npm packages kubernetes-models@4.5.1 and yaml@2 are looked for in
// $MEM_TOOLS (default /opt/memories-tools, where scripts/install-deps.sh
// --test puts them).  Prints "FILE: N document(s) valid" or the errors with
// the document's kind and name; exit status 0 all valid, 1 some invalid,
// 2 usage or the packages missing.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const tools = process.env.MEM_TOOLS || "/opt/memories-tools";
const require = createRequire(join(tools, "package.json"));
let YAML;
try {
	YAML = require("yaml");
	require.resolve("kubernetes-models/package.json");
} catch (e) {
	console.error(`k8s-validate.mjs: kubernetes-models and yaml not found in ${tools}/node_modules (scripts/install-deps.sh --test)`);
	process.exit(2);
}
if (process.argv.length < 3) {
	console.error("usage: node k8s-validate.mjs FILE...");
	process.exit(2);
}

let bad = 0;
for (const file of process.argv.slice(2)) {
	let docs;
	try {
		docs = YAML.parseAllDocuments(readFileSync(file, "utf8"));
	} catch (e) {
		console.error(`${file}: ${e.message}`);
		bad++;
		continue;
	}
	let n = 0;
	for (const doc of docs) {
		if (doc.errors.length) {
			console.error(`${file}: not valid YAML: ${doc.errors[0].message}`);
			bad++;
			continue;
		}
		const obj = doc.toJS();
		if (obj === null)
			continue;
		n++;
		const what = `${file}: ${obj.kind || "?"}/${(obj.metadata && obj.metadata.name) || "?"}`;
		if (typeof obj.apiVersion !== "string" || typeof obj.kind !== "string") {
			console.error(`${what}: apiVersion and kind are required`);
			bad++;
			continue;
		}
		// "batch/v1" -> kubernetes-models/batch/v1/Job; "v1" -> kubernetes-models/v1/ConfigMap
		let Model;
		try {
			Model = require(`kubernetes-models/${obj.apiVersion}/${obj.kind}`)[obj.kind];
		} catch (e) {
			Model = undefined;
		}
		if (!Model) {
			console.error(`${what}: unknown apiVersion/kind '${obj.apiVersion}' '${obj.kind}'`);
			bad++;
			continue;
		}
		try {
			new Model(obj).validate();
		} catch (e) {
			console.error(`${what}: ${e.message}`);
			bad++;
		}
	}
	if (!bad)
		console.log(`${file}: ${n} document(s) valid`);
}
process.exit(bad ? 1 : 0);

/**
 * @module deps/matrix
 * The dependency matrix as data: every component llmisvc can need from a cluster, its pinned version, the exact
 * commands that install it, why it is needed, how to check it, and what "healthy" means (CRDs Established,
 * Deployments Available, a GatewayClass Accepted). `plan`, `install`, `verify` and `doctor` all read this table;
 * nothing else in the code names a version or an install URL.
 *
 * The versions are one combination known to work together: Gateway API v1.5.1 + Gateway API Inference Extension
 * (GIE) v1.5.0 + Istio 1.29.2 / Envoy Gateway v1.8.1 / agentgateway v1.1.0 are the llm-d project's documented
 * "well-lit path"; kgateway v2.2.1 is the release that added InferencePool status management; LeaderWorkerSet
 * v0.8.0 and cert-manager v1.21.2 are current releases whose only contract with the rest is the Kubernetes API.
 * `verify` accepts any release that serves the needed API versions (Gateway API bundles from v1.5.0 on, GIE from
 * v1.0.0 on, which is when InferencePool became `inference.networking.k8s.io/v1`).
 */

export type ProviderName = 'envoy-gateway' | 'istio' | 'kgateway' | 'agentgateway';

export const PROVIDERS: readonly ProviderName[] = ['envoy-gateway', 'istio', 'kgateway', 'agentgateway'];

export const DEFAULT_PROVIDER: ProviderName = 'envoy-gateway';

export type StepName =
  'cert-manager' | 'gateway-api' | 'gateway-api-inference-extension' | ProviderName | 'lws';

/** What must hold for a step to count as healthy. */
export type HealthCheck =
  | { kind: 'crd'; name: string }
  | { kind: 'api'; groupVersion: string }
  | { kind: 'deployment'; namespace: string; name: string }
  | { kind: 'gatewayclass'; name: string; controllerName: string };

/**
 * How `llmisvc deps install` applies a step. `manifest`: server-side apply of a YAML stream, from `url` or, with
 * `--from DIR`, from `DIR/<file>`. `helm`: server-side apply of what `helm template` renders (so install works the
 * same with and without helm releases, and re-running it is a no-op), or with `--from DIR` of `DIR/<file>`, the
 * same output produced where there is network.
 */
export type ApplySource =
  | { kind: 'manifest'; url: string; file: string }
  | {
      kind: 'helm';
      /** Argument lists of `helm template`; their output is what gets applied (helm never talks to the cluster). */
      templates: readonly (readonly string[])[];
      /** Where objects that name no namespace go (`helm template` leaves some without one). */
      namespaces: readonly string[];
      file: string;
      /** Objects applied after the templates (a GatewayClass the chart does not create). */
      objects?: readonly object[];
    };

export interface Component {
  name: StepName;
  version: string;
  /** Why the step exists at all (the plan adds what the given services use it for). */
  purpose: string;
  commands: readonly string[];
  verify: readonly string[];
  apply: ApplySource;
  health: readonly HealthCheck[];
}

export interface ProviderFacts {
  name: ProviderName;
  namespace: string;
  /** The controller Deployment that must be restarted when the GIE CRDs arrive after it started. */
  deployment: string;
  /** The GatewayClass the provider serves and its controllerName. */
  gatewayClass: string;
  controllerName: string;
  /** How to find the Service a Gateway of this provider gets (for port-forward). */
  gatewayService: (gateway: { name: string; namespace: string }) => { namespace: string; selector: string };
}

export const VERSIONS = {
  certManager: 'v1.21.2',
  gatewayApi: 'v1.5.1',
  inferenceExtension: 'v1.5.0',
  envoyGateway: 'v1.8.1',
  envoyAiGateway: 'v0.5.0',
  istio: '1.29.2',
  kgateway: 'v2.2.1',
  agentgateway: 'v1.1.0',
  lws: 'v0.8.0',
  metallb: 'v0.15.2',
  cloudProviderKind: 'v0.10.0',
} as const;

/** The oldest releases `verify` accepts (they serve the API versions llmisvc renders). */
export const MINIMUM_VERSIONS = { gatewayApi: 'v1.5.0', inferenceExtension: 'v1.0.0' } as const;

export const GATEWAY_API_BUNDLE_ANNOTATION = 'gateway.networking.k8s.io/bundle-version';
export const INFERENCE_POOL_CRD = 'inferencepools.inference.networking.k8s.io';

/**
 * LWS's webhook configurations as its release manifests name them (`lws-` + kubebuilder's defaults). `verify` judges
 * LWS by them: whether they carry a CA bundle and whom they call tells an install with LWS's own certificate
 * management from one that relies on cert-manager, and a controller in a Deployment from one outside the cluster.
 */
export const LWS_WEBHOOK_CONFIGURATIONS = [
  { kind: 'mutatingwebhookconfigurations', name: 'lws-mutating-webhook-configuration' },
  { kind: 'validatingwebhookconfigurations', name: 'lws-validating-webhook-configuration' },
] as const;

/** The annotation by which cert-manager's cainjector fills a webhook configuration's CA bundles. */
export const CERT_MANAGER_INJECT_CA_FROM = 'cert-manager.io/inject-ca-from';

const WAIT = '--timeout=5m';
const ISTIO_REPO = 'https://istio-release.storage.googleapis.com/charts';

export const PROVIDER_FACTS: Record<ProviderName, ProviderFacts> = {
  'envoy-gateway': {
    name: 'envoy-gateway',
    namespace: 'envoy-gateway-system',
    deployment: 'envoy-gateway',
    // The class llmisvc's default Gateway names (render's DEFAULT_GATEWAY.className).
    gatewayClass: 'eg',
    controllerName: 'gateway.envoyproxy.io/gatewayclass-controller',
    gatewayService: (gw) => ({
      namespace: 'envoy-gateway-system',
      selector: `gateway.envoyproxy.io/owning-gateway-name=${gw.name},gateway.envoyproxy.io/owning-gateway-namespace=${gw.namespace}`,
    }),
  },
  istio: {
    name: 'istio',
    namespace: 'istio-system',
    deployment: 'istiod',
    gatewayClass: 'istio',
    controllerName: 'istio.io/gateway-controller',
    gatewayService: (gw) => ({
      namespace: gw.namespace,
      selector: `gateway.networking.k8s.io/gateway-name=${gw.name}`,
    }),
  },
  kgateway: {
    name: 'kgateway',
    namespace: 'kgateway-system',
    deployment: 'kgateway',
    gatewayClass: 'kgateway',
    controllerName: 'kgateway.dev/kgateway',
    gatewayService: (gw) => ({
      namespace: gw.namespace,
      selector: `gateway.networking.k8s.io/gateway-name=${gw.name}`,
    }),
  },
  agentgateway: {
    name: 'agentgateway',
    namespace: 'agentgateway-system',
    deployment: 'agentgateway',
    gatewayClass: 'agentgateway',
    controllerName: 'agentgateway.dev/agentgateway',
    gatewayService: (gw) => ({
      namespace: gw.namespace,
      selector: `gateway.networking.k8s.io/gateway-name=${gw.name}`,
    }),
  },
};

const deployment = (namespace: string, name: string): HealthCheck => ({
  kind: 'deployment',
  namespace,
  name,
});
const waitDeployment = (namespace: string, name: string) =>
  `kubectl wait --for=condition=Available deployment/${name} -n ${namespace} ${WAIT}`;
const waitCrds = (...names: string[]) =>
  `kubectl wait --for=condition=Established ${names.map((n) => `crd/${n}`).join(' ')} ${WAIT}`;

const EG_CLASS = {
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'GatewayClass',
  metadata: { name: 'eg' },
  spec: { controllerName: PROVIDER_FACTS['envoy-gateway'].controllerName },
};

const aiGatewayFile = (path: string) =>
  `https://raw.githubusercontent.com/envoyproxy/ai-gateway/${VERSIONS.envoyAiGateway}/${path}`;

export const COMPONENTS: Record<StepName, Component> = {
  'cert-manager': {
    name: 'cert-manager',
    version: VERSIONS.certManager,
    purpose:
      "issues the serving certificates of the LeaderWorkerSet webhooks when LWS is installed to use it (their configurations carry cert-manager.io/inject-ca-from); LWS's default install rotates its own, and installing cert-manager first makes either setup work, so it runs before LWS",
    commands: [
      `kubectl apply --server-side -f https://github.com/cert-manager/cert-manager/releases/download/${VERSIONS.certManager}/cert-manager.yaml`,
    ],
    verify: [
      waitCrds('certificates.cert-manager.io', 'issuers.cert-manager.io'),
      `kubectl wait --for=condition=Available deployment/cert-manager deployment/cert-manager-cainjector deployment/cert-manager-webhook -n cert-manager ${WAIT}`,
    ],
    apply: {
      kind: 'manifest',
      url: `https://github.com/cert-manager/cert-manager/releases/download/${VERSIONS.certManager}/cert-manager.yaml`,
      file: 'cert-manager.yaml',
    },
    health: [
      { kind: 'crd', name: 'certificates.cert-manager.io' },
      { kind: 'crd', name: 'issuers.cert-manager.io' },
      deployment('cert-manager', 'cert-manager'),
      deployment('cert-manager', 'cert-manager-cainjector'),
      deployment('cert-manager', 'cert-manager-webhook'),
    ],
  },
  'gateway-api': {
    name: 'gateway-api',
    version: VERSIONS.gatewayApi,
    purpose:
      'the Gateway, GatewayClass and HTTPRoute APIs (standard channel) that expose a service; the provider and GIE build on them, so they come first',
    commands: [
      `kubectl apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/releases/download/${VERSIONS.gatewayApi}/standard-install.yaml`,
    ],
    verify: [
      waitCrds(
        'gatewayclasses.gateway.networking.k8s.io',
        'gateways.gateway.networking.k8s.io',
        'httproutes.gateway.networking.k8s.io',
      ),
      'kubectl api-resources --api-group=gateway.networking.k8s.io',
    ],
    apply: {
      kind: 'manifest',
      url: `https://github.com/kubernetes-sigs/gateway-api/releases/download/${VERSIONS.gatewayApi}/standard-install.yaml`,
      file: 'gateway-api.yaml',
    },
    health: [
      { kind: 'crd', name: 'gatewayclasses.gateway.networking.k8s.io' },
      { kind: 'crd', name: 'gateways.gateway.networking.k8s.io' },
      { kind: 'crd', name: 'httproutes.gateway.networking.k8s.io' },
      { kind: 'api', groupVersion: 'gateway.networking.k8s.io/v1' },
    ],
  },
  'gateway-api-inference-extension': {
    name: 'gateway-api-inference-extension',
    version: VERSIONS.inferenceExtension,
    purpose:
      'the InferencePool API that sends requests through the Endpoint Picker; a provider only watches InferencePools if the CRD existed when it started, so it goes in before the provider',
    commands: [
      `kubectl apply --server-side -f https://github.com/kubernetes-sigs/gateway-api-inference-extension/releases/download/${VERSIONS.inferenceExtension}/manifests.yaml`,
    ],
    verify: [waitCrds(INFERENCE_POOL_CRD), 'kubectl api-resources --api-group=inference.networking.k8s.io'],
    apply: {
      kind: 'manifest',
      url: `https://github.com/kubernetes-sigs/gateway-api-inference-extension/releases/download/${VERSIONS.inferenceExtension}/manifests.yaml`,
      file: 'gateway-api-inference-extension.yaml',
    },
    health: [
      { kind: 'crd', name: INFERENCE_POOL_CRD },
      { kind: 'api', groupVersion: 'inference.networking.k8s.io/v1' },
    ],
  },
  'envoy-gateway': {
    name: 'envoy-gateway',
    version: VERSIONS.envoyGateway,
    purpose: `Envoy Gateway programs the Gateways; with Envoy AI Gateway ${VERSIONS.envoyAiGateway}'s values and its InferencePool add-on it routes HTTPRoutes to InferencePools through the Endpoint Picker. GatewayClass "eg" is the class llmisvc's default Gateway uses`,
    commands: [
      `helm template eg-crds oci://docker.io/envoyproxy/gateway-crds-helm --version ${VERSIONS.envoyGateway} --set crds.gatewayAPI.enabled=false --set crds.envoyGateway.enabled=true | kubectl apply --server-side -f -`,
      `helm upgrade -i eg oci://docker.io/envoyproxy/gateway-helm --version ${VERSIONS.envoyGateway} -n envoy-gateway-system --create-namespace --skip-crds -f ${aiGatewayFile('manifests/envoy-gateway-values.yaml')} -f ${aiGatewayFile('examples/inference-pool/envoy-gateway-values-addon.yaml')}`,
      `helm upgrade -i aieg-crd oci://docker.io/envoyproxy/ai-gateway-crds-helm --version ${VERSIONS.envoyAiGateway} -n envoy-ai-gateway-system --create-namespace`,
      `helm upgrade -i aieg oci://docker.io/envoyproxy/ai-gateway-helm --version ${VERSIONS.envoyAiGateway} -n envoy-ai-gateway-system --create-namespace`,
      `kubectl apply --server-side -f - <<'EOF'\napiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata:\n  name: eg\nspec:\n  controllerName: ${EG_CLASS.spec.controllerName}\nEOF`,
    ],
    verify: [
      waitDeployment('envoy-gateway-system', 'envoy-gateway'),
      waitDeployment('envoy-ai-gateway-system', 'ai-gateway-controller'),
      `kubectl wait --for=condition=Accepted gatewayclass/eg ${WAIT}`,
    ],
    apply: {
      kind: 'helm',
      file: 'envoy-gateway.yaml',
      namespaces: ['envoy-gateway-system', 'envoy-ai-gateway-system'],
      templates: [
        [
          'eg-crds',
          'oci://docker.io/envoyproxy/gateway-crds-helm',
          '--version',
          VERSIONS.envoyGateway,
          '--set',
          'crds.gatewayAPI.enabled=false',
          '--set',
          'crds.envoyGateway.enabled=true',
        ],
        [
          'eg',
          'oci://docker.io/envoyproxy/gateway-helm',
          '--version',
          VERSIONS.envoyGateway,
          '-n',
          'envoy-gateway-system',
          '--skip-crds',
          '-f',
          aiGatewayFile('manifests/envoy-gateway-values.yaml'),
          '-f',
          aiGatewayFile('examples/inference-pool/envoy-gateway-values-addon.yaml'),
        ],
        [
          'aieg-crd',
          'oci://docker.io/envoyproxy/ai-gateway-crds-helm',
          '--version',
          VERSIONS.envoyAiGateway,
          '-n',
          'envoy-ai-gateway-system',
        ],
        [
          'aieg',
          'oci://docker.io/envoyproxy/ai-gateway-helm',
          '--version',
          VERSIONS.envoyAiGateway,
          '-n',
          'envoy-ai-gateway-system',
        ],
      ],
      objects: [EG_CLASS],
    },
    health: [
      deployment('envoy-gateway-system', 'envoy-gateway'),
      deployment('envoy-ai-gateway-system', 'ai-gateway-controller'),
      { kind: 'gatewayclass', name: 'eg', controllerName: EG_CLASS.spec.controllerName },
    ],
  },
  istio: {
    name: 'istio',
    version: VERSIONS.istio,
    purpose:
      'istiod programs the Gateways; pilot env ENABLE_GATEWAY_API_INFERENCE_EXTENSION=true makes it route HTTPRoutes to InferencePools through the Endpoint Picker (the controller adds the DestinationRule its gateways need for the picker\'s TLS). Use GatewayClass "istio" (controller flag --gateway-class istio)',
    commands: [
      `helm upgrade -i istio-base base --repo ${ISTIO_REPO} --version ${VERSIONS.istio} -n istio-system --create-namespace`,
      `helm upgrade -i istiod istiod --repo ${ISTIO_REPO} --version ${VERSIONS.istio} -n istio-system --set pilot.env.ENABLE_GATEWAY_API_INFERENCE_EXTENSION=true`,
    ],
    verify: [
      waitDeployment('istio-system', 'istiod'),
      `kubectl wait --for=condition=Accepted gatewayclass/istio ${WAIT}`,
    ],
    apply: {
      kind: 'helm',
      file: 'istio.yaml',
      namespaces: ['istio-system'],
      templates: [
        [
          'istio-base',
          'base',
          '--repo',
          ISTIO_REPO,
          '--version',
          VERSIONS.istio,
          '-n',
          'istio-system',
          '--include-crds',
        ],
        [
          'istiod',
          'istiod',
          '--repo',
          ISTIO_REPO,
          '--version',
          VERSIONS.istio,
          '-n',
          'istio-system',
          '--set',
          'pilot.env.ENABLE_GATEWAY_API_INFERENCE_EXTENSION=true',
        ],
      ],
    },
    health: [
      deployment('istio-system', 'istiod'),
      { kind: 'gatewayclass', name: 'istio', controllerName: PROVIDER_FACTS.istio.controllerName },
    ],
  },
  kgateway: {
    name: 'kgateway',
    version: VERSIONS.kgateway,
    purpose:
      'kgateway programs the Gateways; inferenceExtension.enabled=true makes it route HTTPRoutes to InferencePools. Use GatewayClass "kgateway" (controller flag --gateway-class kgateway). llm-d now recommends agentgateway for new installs',
    commands: [
      `helm upgrade -i kgateway-crds oci://cr.kgateway.dev/kgateway-dev/charts/kgateway-crds --version ${VERSIONS.kgateway} -n kgateway-system --create-namespace`,
      `helm upgrade -i kgateway oci://cr.kgateway.dev/kgateway-dev/charts/kgateway --version ${VERSIONS.kgateway} -n kgateway-system --create-namespace --set inferenceExtension.enabled=true`,
    ],
    verify: [
      waitDeployment('kgateway-system', 'kgateway'),
      `kubectl wait --for=condition=Accepted gatewayclass/kgateway ${WAIT}`,
    ],
    apply: {
      kind: 'helm',
      file: 'kgateway.yaml',
      namespaces: ['kgateway-system'],
      templates: [
        [
          'kgateway-crds',
          'oci://cr.kgateway.dev/kgateway-dev/charts/kgateway-crds',
          '--version',
          VERSIONS.kgateway,
          '-n',
          'kgateway-system',
        ],
        [
          'kgateway',
          'oci://cr.kgateway.dev/kgateway-dev/charts/kgateway',
          '--version',
          VERSIONS.kgateway,
          '-n',
          'kgateway-system',
          '--set',
          'inferenceExtension.enabled=true',
        ],
      ],
    },
    health: [
      deployment('kgateway-system', 'kgateway'),
      { kind: 'gatewayclass', name: 'kgateway', controllerName: PROVIDER_FACTS.kgateway.controllerName },
    ],
  },
  agentgateway: {
    name: 'agentgateway',
    version: VERSIONS.agentgateway,
    purpose:
      'agentgateway programs the Gateways; inferenceExtension.enabled=true makes it route HTTPRoutes to InferencePools. Use GatewayClass "agentgateway" (controller flag --gateway-class agentgateway)',
    commands: [
      `helm upgrade -i agentgateway-crds oci://cr.agentgateway.dev/charts/agentgateway-crds --version ${VERSIONS.agentgateway} -n agentgateway-system --create-namespace`,
      `helm upgrade -i agentgateway oci://cr.agentgateway.dev/charts/agentgateway --version ${VERSIONS.agentgateway} -n agentgateway-system --create-namespace --set inferenceExtension.enabled=true`,
    ],
    verify: [
      waitDeployment('agentgateway-system', 'agentgateway'),
      `kubectl wait --for=condition=Accepted gatewayclass/agentgateway ${WAIT}`,
    ],
    apply: {
      kind: 'helm',
      file: 'agentgateway.yaml',
      namespaces: ['agentgateway-system'],
      templates: [
        [
          'agentgateway-crds',
          'oci://cr.agentgateway.dev/charts/agentgateway-crds',
          '--version',
          VERSIONS.agentgateway,
          '-n',
          'agentgateway-system',
        ],
        [
          'agentgateway',
          'oci://cr.agentgateway.dev/charts/agentgateway',
          '--version',
          VERSIONS.agentgateway,
          '-n',
          'agentgateway-system',
          '--set',
          'inferenceExtension.enabled=true',
        ],
      ],
    },
    health: [
      deployment('agentgateway-system', 'agentgateway'),
      {
        kind: 'gatewayclass',
        name: 'agentgateway',
        controllerName: PROVIDER_FACTS.agentgateway.controllerName,
      },
    ],
  },
  lws: {
    name: 'lws',
    version: VERSIONS.lws,
    purpose:
      'the LeaderWorkerSet API and controller that run one multi-node replica as a leader pod plus workers',
    commands: [
      `kubectl apply --server-side -f https://github.com/kubernetes-sigs/lws/releases/download/${VERSIONS.lws}/manifests.yaml`,
    ],
    verify: [
      waitCrds('leaderworkersets.leaderworkerset.x-k8s.io'),
      waitDeployment('lws-system', 'lws-controller-manager'),
    ],
    apply: {
      kind: 'manifest',
      url: `https://github.com/kubernetes-sigs/lws/releases/download/${VERSIONS.lws}/manifests.yaml`,
      file: 'lws.yaml',
    },
    health: [
      { kind: 'crd', name: 'leaderworkersets.leaderworkerset.x-k8s.io' },
      { kind: 'api', groupVersion: 'leaderworkerset.x-k8s.io/v1' },
      deployment('lws-system', 'lws-controller-manager'),
    ],
  },
};

/** Commands that put a step's manifests into `DIR/<file>` where there is network, for `install --from DIR`. */
export function airGappedCommands(component: Component): string[] {
  const apply = component.apply;
  if (apply.kind === 'manifest') return [`curl -fsSL -o DIR/${apply.file} ${apply.url}`];
  const lines = apply.templates.map(
    (args) => `{ helm template ${args.join(' ')}; echo '---'; } >> DIR/${apply.file}`,
  );
  return [`: > DIR/${apply.file}`, ...lines];
}

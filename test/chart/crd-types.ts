// Types of the two custom resources the chart renders, which the
// kubernetes-types package does not carry: written by hand from the CRDs'
// OpenAPI schemas, limited to the fields the chart may set (every other field
// is then an error, as for the built-in kinds). Sources:
// - cert-manager.io/v1 Certificate: cert-manager's
//   deploy/crds/crd-certificates.yaml (v1.16), `spec`.
// - monitoring.coreos.com/v1 ServiceMonitor: prometheus-operator's
//   example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml
//   (v0.76), `spec.endpoints[]`.
// Must not: be imported by src/ (test-only).
import type { ObjectMeta, LabelSelector } from 'kubernetes-types/meta/v1.js';

/** cert-manager.io/v1 Certificate (subset). */
export interface Certificate {
  apiVersion: 'cert-manager.io/v1';
  kind: 'Certificate';
  metadata: ObjectMeta;
  spec: {
    secretName: string;
    isCA?: boolean;
    commonName?: string;
    dnsNames?: string[];
    /** Go duration strings, e.g. "8760h". */
    duration?: string;
    renewBefore?: string;
    privateKey?: {
      algorithm?: 'RSA' | 'ECDSA' | 'Ed25519';
      size?: number;
      encoding?: 'PKCS1' | 'PKCS8';
      rotationPolicy?: 'Never' | 'Always';
    };
    usages?: Array<
      'signing' | 'digital signature' | 'content commitment' | 'key encipherment' | 'key agreement' | 'data encipherment' | 'cert sign' | 'crl sign' | 'server auth' | 'client auth'
    >;
    nameConstraints?: {
      critical?: boolean;
      permitted?: { dnsDomains?: string[]; ipRanges?: string[]; emailAddresses?: string[]; uriDomains?: string[] };
      excluded?: { dnsDomains?: string[]; ipRanges?: string[]; emailAddresses?: string[]; uriDomains?: string[] };
    };
    issuerRef: { name: string; kind?: string; group?: string };
  };
}

/** monitoring.coreos.com/v1 ServiceMonitor (subset). */
export interface ServiceMonitor {
  apiVersion: 'monitoring.coreos.com/v1';
  kind: 'ServiceMonitor';
  metadata: ObjectMeta;
  spec: {
    selector: LabelSelector;
    namespaceSelector?: { any?: boolean; matchNames?: string[] };
    jobLabel?: string;
    endpoints: Array<{
      port?: string;
      targetPort?: number | string;
      path?: string;
      scheme?: 'http' | 'https';
      interval?: string;
      scrapeTimeout?: string;
      honorLabels?: boolean;
    }>;
  };
}

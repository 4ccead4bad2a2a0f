/**
 * The lint rules of `docker build --check` (BuildKit frontend/dockerfile/linter/ruleset.go): names,
 * descriptions and message formats kept word for word so output and `# check=skip=` lists match.
 */

export interface Rule {
  name: string;
  description: string;
  format: (...args: string[]) => string;
}

const didYouMean = (s: string | undefined, prefix = ''): string => (s === undefined || s === '' ? '' : ` (did you mean ${prefix}${s}?)`);
const q = (s: string): string => JSON.stringify(s);

export const RULES = {
  StageNameCasing: { description: 'Stage names should be lowercase', format: (n: string) => `Stage name '${n}' should be lowercase` },
  FromAsCasing: { description: 'The \'as\' keyword should match the case of the \'from\' keyword', format: (f: string, a: string) => `'${a}' and '${f}' keywords' casing do not match` },
  ConsistentInstructionCasing: {
    description: 'All commands within the Dockerfile should use the same casing (either upper or lower)',
    format: (c: string, casing: string) => `Command '${c}' should match the case of the command majority (${casing})`,
  },
  DuplicateStageName: { description: 'Stage names should be unique', format: (n: string) => `Duplicate stage name ${q(n)}, stage names should be unique` },
  ReservedStageName: { description: 'Reserved words should not be used as stage names', format: (n: string) => `Stage name should not use the same name as reserved stage ${q(n)}` },
  JSONArgsRecommended: {
    description: 'JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals',
    format: (c: string) => `JSON arguments recommended for ${c} to prevent unintended behavior related to OS signals`,
  },
  MaintainerDeprecated: {
    description: 'The MAINTAINER instruction is deprecated, use a label instead to define an image author',
    format: () => 'Maintainer instruction is deprecated in favor of using label',
  },
  UndefinedArgInFrom: {
    description: 'FROM command must use declared ARGs',
    format: (a: string, s?: string) => `FROM argument '${a}' is not declared${didYouMean(s)}`,
  },
  WorkdirRelativePath: {
    description: 'Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes',
    format: (w: string) => `Relative workdir ${q(w)} can have unexpected results if the base image changes`,
  },
  UndefinedVar: {
    description: 'Variables should be defined before their use',
    format: (v: string, s?: string) => `Usage of undefined variable '$${v}'${didYouMean(s, '$')}`,
  },
  MultipleInstructionsDisallowed: {
    description: 'Multiple instructions of the same type should not be used in the same stage',
    format: (c: string) => `Multiple ${c} instructions should not be used in the same stage because only the last one will be used`,
  },
  LegacyKeyValueFormat: {
    description: 'Legacy key/value format with whitespace separator should not be used',
    format: (c: string) => `"${c} key=value" should be used instead of legacy "${c} key value" format`,
  },
  InvalidDefaultArgInFrom: {
    description: 'Default value for global ARG results in an empty or invalid base image name',
    format: (b: string) => `Default value for ARG ${b} results in empty or invalid base image name`,
  },
  FromPlatformFlagConstDisallowed: {
    description: 'FROM --platform flag should not use a constant value',
    format: (p: string) => `FROM --platform flag should not use constant value ${q(p)}`,
  },
  SecretsUsedInArgOrEnv: {
    description: 'Sensitive data should not be used in the ARG or ENV commands',
    format: (i: string, k: string) => `Do not use ARG or ENV instructions for sensitive data (${i} ${q(k)})`,
  },
  RedundantTargetPlatform: {
    description: 'Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior',
    format: (p: string) => `Setting platform to predefined ${p} in FROM is redundant as this is the default behavior`,
  },
  ExposeProtoCasing: {
    description: 'Protocol in EXPOSE instruction should be lowercase',
    format: (p: string) => `Defined protocol '${p}' in EXPOSE instruction should be lowercase`,
  },
  ExposeInvalidFormat: {
    description: 'IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release',
    format: (p: string) => `EXPOSE instruction should not define an IP address or host-port mapping, found '${p}'`,
  },
} satisfies Record<string, Omit<Rule, 'name'>>;

export type RuleName = keyof typeof RULES;

export const RULE_NAMES = Object.keys(RULES) as RuleName[];

/** JSONArgsRecommended → https://docs.docker.com/go/dockerfile/rule/json-args-recommended/ */
export function ruleUrl(name: string): string {
  const kebab = name.replace(/([a-z0-9])([A-Z])/g, '$1-$2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1-$2').toLowerCase();
  return `https://docs.docker.com/go/dockerfile/rule/${kebab}/`;
}

// BuildKit's secretsRegexp: deny tokens as whole `_`-separated parts, unless "public" is one too.
const secretDeny = /(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)/i;
const secretAllow = /(?:_|^)(?:public)(?:_|$)/i;

export function looksSecret(key: string): boolean {
  return secretDeny.test(key) && !secretAllow.test(key);
}

// Docker reference grammar (distribution/reference), enough to tell a usable base name.
const component = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const reReference = new RegExp(`^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?${component}(?:/${component})*(?::[\\w][\\w.-]{0,127})?(?:@[a-z0-9]+:[a-fA-F0-9]{32,})?$`);

export function isValidBaseName(name: string): boolean {
  return name.length <= 4096 && reReference.test(name);
}

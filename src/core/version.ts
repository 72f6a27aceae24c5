// bitscale's version, recorded in every manifest (kept equal to package.json by a test).
export const BITSCALE_VERSION = '0.1.0';

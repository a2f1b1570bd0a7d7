/** @type {import('jest').Config} */
module.exports = {
    preset: "ts-jest",
    testEnvironment: "node",
    roots: ["<rootDir>/tests"],
    testTimeout: 120000,
    transform: { "^.+\\.ts$": ["ts-jest", {}] },
};

/** @type {import('jest').Config} */
module.exports = {
    preset: "ts-jest",
    testEnvironment: "node",
    roots: ["<rootDir>/tests"],
    testTimeout: 120000,
    // One worker, recycled once it holds more than this after a file: every mock run loads the Pulumi program
    // anew, and in one process for the whole suite the heap outgrew Node's 4 GB default.
    workerIdleMemoryLimit: "1GB",
    transform: { "^.+\\.ts$": ["ts-jest", {}] },
};

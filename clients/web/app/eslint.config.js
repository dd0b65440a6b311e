// ESLint for the web app: typescript-eslint's strict, type-checked rules on src/ and test/,
// plain recommended rules on the build script. Nothing the app does may reach a console.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "build/", "node_modules/"] },
  js.configs.recommended,
  {
    files: ["**/*.ts"],
    extends: [...tseslint.configs.strictTypeChecked, ...tseslint.configs.stylisticTypeChecked],
    languageOptions: {
      parserOptions: {
        project: ["./tsconfig.json", "./tsconfig.test.json"],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // node:test's test() and describe() return promises that the runner awaits.
      "@typescript-eslint/no-floating-promises": [
        "error",
        {
          allowForKnownSafeCalls: [
            { from: "package", package: "node:test", name: ["test", "describe", "it", "suite"] },
          ],
        },
      ],
      // No key, plaintext, passphrase or detainee id may reach a console.
      "no-console": "error",
      // Markup is built from elements, never from strings: no innerHTML, no eval.
      "no-restricted-properties": [
        "error",
        { property: "innerHTML", message: "build elements with the DOM helper" },
        { property: "outerHTML", message: "build elements with the DOM helper" },
        { property: "insertAdjacentHTML", message: "build elements with the DOM helper" },
      ],
      "no-eval": "error",
      "no-implied-eval": "error",
    },
  },
  {
    files: ["**/*.js", "**/*.mjs"],
    languageOptions: {
      globals: { console: "readonly", process: "readonly", URL: "readonly", Buffer: "readonly" },
    },
  },
);

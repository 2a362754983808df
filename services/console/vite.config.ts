// Two pages from one source tree: the district's one-screen console and the street desk.
// Their shared code lands in hashed files under dist/assets/ (services/common/static.py).
import vue from "@vitejs/plugin-vue";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [vue()],
  base: "/",
  build: {
    outDir: "dist",
    assetsDir: "assets",
    emptyOutDir: true,
    chunkSizeWarningLimit: 1200,
    rollupOptions: {
      input: {
        district: "district.html", // relative to this folder, where `npm run build` runs
        street: "street.html",
      },
    },
  },
});

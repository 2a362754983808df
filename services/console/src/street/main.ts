import { createApp } from "vue";
import "../common/theme.css";
import StreetApp from "./StreetApp.vue";

createApp(StreetApp).mount("#app");

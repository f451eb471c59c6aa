/**
 * Which AsyncAPI channel a concrete MQTT topic (or a subscription filter) is:
 * `{param}` in an address stands for one topic level; in a filter it may be `+`.
 */
export interface ChannelLike {
  name: string;
  address: string;
}

export function channelMatcher<C extends ChannelLike>(channels: readonly C[]): (topic: string, o?: { filter?: boolean }) => C | undefined {
  const compiled = channels.map((c) => {
    const parts = c.address.split(/\{[A-Za-z]+\}/).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    return {
      c,
      topic: new RegExp(`^${parts.join('[^/+#]+')}$`),
      filter: new RegExp(`^${parts.join('(?:[^/+#]+|\\+)')}$`),
    };
  });
  return (topic, o = {}) => compiled.find((x) => (o.filter ? x.filter : x.topic).test(topic))?.c;
}
